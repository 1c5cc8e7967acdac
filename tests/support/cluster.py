"""docker-compose.yml's topology as local processes: Airflow on the CeleryExecutor.

PostgreSQL (Airflow's metadata and the version store, each a database of its own), Redis (the
broker, one database index of its own), api-server, scheduler, dag-processor, triggerer and N
Celery workers, each its own process group so a test can SIGKILL a worker and everything it forked.
Used by tests/test_celery_engine.py and benchmarks/workers.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")
PG_HOST = "postgres@127.0.0.1:5432"
REDIS_URL = os.environ.get("POLICYWATCH_TEST_REDIS", "redis://127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin():  # type: ignore[no-untyped-def]
    return create_engine(f"postgresql+psycopg://{PG_HOST}/postgres", isolation_level="AUTOCOMMIT")


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name


def drop_database(name: str) -> None:
    engine = _admin()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def flush_redis(db: int) -> None:
    import redis

    redis.Redis.from_url(f"{REDIS_URL}/{db}").flushdb()


class CeleryCluster:
    """Start with `start()` (or as a context manager); `stop()` ends every process and drops the
    databases. `env` is what every process gets (and what `airflow(...)` runs with)."""

    def __init__(
        self,
        home: Path,
        config_path: Path,
        *,
        workers: int = 2,
        concurrency: int = 2,
        heartbeat_timeout_s: int = 30,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.config_path = config_path
        self.worker_count = workers
        self.concurrency = concurrency
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.extra_env = extra_env or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.meta_db = ""
        self.store_db = ""
        self.redis_db = random.randint(3, 15)
        self.api_port = free_port()
        self.env: dict[str, str] = {}
        self._meta_engine = None

    # -- setup ---------------------------------------------------------------------------------

    @property
    def store_url(self) -> str:
        return f"postgresql+psycopg://{PG_HOST}/{self.store_db}"

    @property
    def meta_url(self) -> str:
        return f"postgresql+psycopg://{PG_HOST}/{self.meta_db}"

    def _environment(self) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.api_port}"
        secret = base64.urlsafe_b64encode(os.urandom(32)).decode()
        return {
            **os.environ,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            # Paused until `unpause`: an unpaused DAG's schedule (catchup off) runs its latest past
            # cron time at once, so unpausing is what starts a source's first (baseline) cycle.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__FERNET_KEY": secret,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.meta_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.meta_url,
            "AIRFLOW__CELERY__BROKER_URL": f"{REDIS_URL}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg://{PG_HOST}/{self.meta_db}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__LOGGING__TRIGGERER_LOG_SERVER_PORT": str(free_port()),
            # A worker that died (SIGKILL, a lost machine) has its tasks failed and retried after
            # this many seconds without a heartbeat (Airflow's default: 300).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout_s),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "POLICYWATCH_CONFIG": str(self.config_path),
            "POLICYWATCH_DATABASE_URL": self.store_url,
            **self.extra_env,
        }

    def airflow(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIRFLOW, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )

    def start(self) -> CeleryCluster:
        self.home.mkdir(parents=True, exist_ok=True)
        self.meta_db = create_database("pw_airflow")
        self.store_db = create_database("pw_store")
        flush_redis(self.redis_db)
        self.env = self._environment()
        migrate = self.airflow("db", "migrate", timeout=600)
        if migrate.returncode != 0:
            raise RuntimeError("airflow db migrate failed:\n" + (migrate.stdout + migrate.stderr)[-4000:])
        upgrade = subprocess.run(
            [str(BIN / "policywatch"), "db", "upgrade"], env=self.env, capture_output=True, text=True
        )
        if upgrade.returncode != 0:
            raise RuntimeError("policywatch db upgrade failed:\n" + upgrade.stderr[-3000:])
        self._spawn("api-server", ["api-server", "--port", str(self.api_port)])
        self._spawn("scheduler", ["scheduler"])
        self._spawn("dag-processor", ["dag-processor"])
        self._spawn("triggerer", ["triggerer"])
        for n in range(1, self.worker_count + 1):
            self.start_worker(f"w{n}")
        self.wait_for_api()
        return self

    def start_worker(self, name: str) -> None:
        # Each worker's tasks record `name` as their hostname (one machine, two workers).
        env = {
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.support.worker_name.worker_name",
            "POLICYWATCH_TEST_WORKER": name,
        }
        self._spawn(
            name,
            ["celery", "worker", "--celery-hostname", f"{name}@%h", "--skip-serve-logs"],
            env,
        )

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - the process owns it
        self.processes[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_for_api(self, timeout_s: float = 240) -> None:
        import requests

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout=5).ok:
                    return
            time.sleep(2)
        raise TimeoutError(f"the api-server did not answer in {timeout_s} s\n{self.logs('api-server')}")

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None and not name.startswith("killed:"):
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.logs(name)}")

    def logs(self, name: str, tail: int = 6000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and everything it forked, as a machine or container dies: its pool,
        the task supervisors and the tasks (which run in process groups of their own)."""
        import psutil

        proc = self.processes.pop(name)
        tree = psutil.Process(proc.pid).children(recursive=True)
        os.killpg(proc.pid, signal.SIGKILL)
        for child in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        proc.wait(timeout=30)
        psutil.wait_procs(tree, timeout=30)
        self.processes[f"killed:{name}"] = proc

    def worker_cpu_s(self) -> float:
        """CPU seconds the live workers have used so far: their processes and the task processes
        they have reaped (Airflow's per-task start-up included)."""
        import psutil

        total = 0.0
        for name, proc in self.processes.items():
            if not name.startswith("w") or proc.poll() is not None:
                continue
            root = psutil.Process(proc.pid)
            for p in (root, *root.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = p.cpu_times()
                    total += t.user + t.system + t.children_user + t.children_system
        return total

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._meta_engine is not None:
            self._meta_engine.dispose()
        for name in (self.meta_db, self.store_db):
            if name:
                drop_database(name)
        with contextlib.suppress(Exception):
            flush_redis(self.redis_db)

    def __enter__(self) -> CeleryCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the metadata database -------------------------------------------------------------------

    @property
    def meta(self):  # type: ignore[no-untyped-def]
        if self._meta_engine is None:
            self._meta_engine = create_engine(self.meta_url)
        return self._meta_engine

    def query(self, sql: str, **params: object) -> list[tuple]:
        with self.meta.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def wait_for_dags(self, dag_ids: list[str], timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            found = {r[0] for r in self.query("SELECT dag_id FROM dag WHERE NOT is_stale")}
            if set(dag_ids) <= found:
                return
            time.sleep(2)
        raise TimeoutError(f"DAGs not parsed in {timeout_s} s: {dag_ids}\n{self.logs('dag-processor')}")

    def trigger(self, dag_id: str, conf: dict[str, object] | None = None) -> str:
        run_id = f"test_{uuid.uuid4().hex[:8]}"
        extra = ["--conf", json.dumps(conf)] if conf else []
        result = self.airflow("dags", "trigger", dag_id, "--run-id", run_id, *extra)
        if result.returncode != 0:
            raise RuntimeError(f"trigger {dag_id} failed:\n{(result.stdout + result.stderr)[-3000:]}")
        return run_id

    def unpause(self, pattern: str) -> None:
        """Unpause the DAGs whose id matches the regular expression `pattern`."""
        result = self.airflow("dags", "unpause", "--treat-dag-id-as-regex", "--yes", pattern)
        if result.returncode != 0:
            raise RuntimeError(f"unpause {pattern} failed:\n{(result.stdout + result.stderr)[-3000:]}")

    def first_run(self, dag_id: str, timeout_s: float = 120) -> str:
        """The run id of the DAG's first run (the scheduled one its unpausing started)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rows = self.query("SELECT run_id FROM dag_run WHERE dag_id = :d ORDER BY id LIMIT 1", d=dag_id)
            if rows:
                return rows[0][0]
            self.check_alive()
            time.sleep(1)
        raise TimeoutError(f"{dag_id} has no run after {timeout_s} s")

    def run_seconds(self, dag_id: str, run_id: str) -> float:
        """From the run's creation (queued) to its end, by the metadata database's clock."""
        [(seconds,)] = self.query(
            "SELECT EXTRACT(EPOCH FROM end_date - queued_at) FROM dag_run WHERE dag_id = :d AND run_id = :r",
            d=dag_id,
            r=run_id,
        )
        return float(seconds)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id)
        return rows[0][0] if rows else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float = 600) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise TimeoutError(f"{dag_id} {run_id} still {self.run_state(dag_id, run_id)} after {timeout_s} s")

    def task_states(self, dag_id: str, run_id: str) -> list[tuple]:
        return self.query(
            "SELECT task_id, map_index, state, hostname, try_number FROM task_instance "
            "WHERE dag_id = :d AND run_id = :r ORDER BY task_id, map_index",
            d=dag_id,
            r=run_id,
        )

    def hostnames(self) -> set[str]:
        """Every worker that ran a try of any task (task_instance and the earlier tries' history)."""
        rows = self.query(
            "SELECT hostname FROM task_instance WHERE hostname <> '' "
            "UNION SELECT hostname FROM task_instance_history WHERE hostname <> ''"
        )
        return {r[0] for r in rows if r[0]}

    @contextlib.contextmanager
    def running(self) -> Iterator[CeleryCluster]:
        try:
            yield self.start()
        finally:
            self.stop()
