"""The analyst web app under load: the real server (uvicorn, started as `policywatch web` starts it)
on 127.0.0.1 over a realistic store, driven by N concurrent clients for a fixed time.

    python -m benchmarks.web_load [--duration 30] [--clients 10,50,200] [--docs 10000] [--versions 5]
                                  [--db URL] [--server web|cli] [--client raw|httpx] [--timeout 60]
                                  [--name web-load]

Each client is one keep-alive connection (asyncio + httpx; `--client raw`: a lean HTTP/1.1 client
that costs a tenth of the CPU, so it retries refused requests ten times as fast) that sends a
request, waits for the answer, and sends the next at once (no think time, Retry-After not
honoured: the hostile case),
over a mix of change-list and search requests (HTML pages and the JSON API). When the time is up
the clients send nothing more and wait for their last answer (counted); at that moment a probe
asks for /changes every 0.1 s until it gets a 200: the recovery time; once every client has its last
answer, one more request (`after_load`: its status and time). Reported per level:
requests/s (all answers and 200s only), p50/p90/p99/max latency over every answer (503s and
client errors included), answers by status (`timeout` and transport errors by name), recovery.

The store (--docs x --versions, benchmarks.web_bench.build_store) is kept in var/bench/ and reused.
`--server web` runs `python -m policywatch.web.server` (what `policywatch web` runs); `--server cli` runs the
`policywatch web` command of this tree. Results: benchmarks/results/<name>-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
PROBE_PATH = "/changes"


def change_and_search_paths(docs: int) -> Callable[[random.Random], str]:
    """The request mix: the change list (page, API, filtered, deeper pages) and search (page, API,
    a common phrase and one document's), all 3+ character searches (the FTS5 path on SQLite)."""

    choices: list[Callable[[random.Random], str]] = [
        lambda r: "/changes",
        lambda r: "/api/changes",
        lambda r: "/api/changes?source=ndrc&kind=changed&relevant=yes",
        lambda r: f"/changes?page={r.randrange(1, 100)}",
        lambda r: "/search?q=数字经济",
        lambda r: "/api/search?q=核心产业增加值",
        lambda r: f"/api/search?q=文件{r.randrange(1, docs + 1)}第",
    ]

    def pick(rng: random.Random) -> str:
        return rng.choice(choices)(rng)

    return pick


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(kind: str, port: int) -> list[str]:
    if kind == "cli":
        return [
            str(Path(sys.executable).with_name("policywatch")),
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    return [sys.executable, "-m", "policywatch.web.server", "--host", "127.0.0.1", "--port", str(port)]


@dataclass
class Server:
    """The web app in its own process (and its workers), answering on 127.0.0.1:port."""

    url: str
    kind: str = "web"
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 90.0) -> Server:
        self.port = self.port or free_port()
        env = {**os.environ, "POLICYWATCH_DATABASE_URL": self.url, **self.env}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            server_command(self.kind, self.port),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers are its process group: stopped together
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the web server exited with {self.proc.returncode} (log: {self.log_path})"
                )
            try:
                if httpx.get(self.base_url + "/api/sources", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the web server did not answer within {ready_timeout} s (log: {self.log_path})")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the server and its workers so far (None without psutil)."""
        try:
            import psutil
        except ImportError:
            return None
        if self.proc is None:
            return None
        try:
            root = psutil.Process(self.proc.pid)
            total = 0.0
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            return total
        except psutil.Error:
            return None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the clients ------------------------------------------------------------------------------


@dataclass
class Sample:
    status: str  # "200", "503", …, "timeout", or the transport error's name
    seconds: float
    path: str
    retry_after: str | None = None


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[index]


@dataclass
class LoadRun:
    clients: int
    duration_s: float
    samples: list[Sample]
    recovery: dict[str, Any]
    after: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0

    def by_status(self) -> dict[str, int]:
        return dict(sorted(Counter(s.status for s in self.samples).items()))

    def _p99_by_path(self) -> dict[str, float]:
        groups: dict[str, list[float]] = {}
        for sample in self.samples:
            if sample.status == "200":
                family = re.sub(r"\d+", "N", sample.path)
                groups.setdefault(family, []).append(sample.seconds)
        return {k: round(_percentile(sorted(v), 0.99), 3) for k, v in sorted(groups.items())}

    def summary(self) -> dict[str, Any]:
        everything = sorted(s.seconds for s in self.samples)
        ok = sorted(s.seconds for s in self.samples if s.status == "200")
        total = len(self.samples)
        by_status = self.by_status()
        errors = total - by_status.get("200", 0)
        unintended = sum(
            n for st, n in by_status.items() if st not in ("200", "503") and not st.startswith("4")
        )
        return {
            "clients": self.clients,
            "duration_s": self.duration_s,
            "requests": total,
            "requests_per_s": round(total / self.duration_s, 1),
            "ok_per_s": round(len(ok) / self.duration_s, 1),
            "by_status": by_status,
            "error_rate": round(errors / total, 4) if total else 0.0,
            "rate_503": round(by_status.get("503", 0) / total, 4) if total else 0.0,
            "unintended_errors": unintended,
            "latency_all_s": {
                "p50": round(_percentile(everything, 0.50), 3),
                "p90": round(_percentile(everything, 0.90), 3),
                "p99": round(_percentile(everything, 0.99), 3),
                "max": round(everything[-1], 3) if everything else 0.0,
            },
            "latency_200_s": {
                "p50": round(_percentile(ok, 0.50), 3),
                "p99": round(_percentile(ok, 0.99), 3),
                "max": round(ok[-1], 3) if ok else 0.0,
            },
            "p99_200_by_path_s": self._p99_by_path(),
            "recovery": self.recovery,
            "after_load": self.after,
            "wall_s": round(self.wall_s, 1),
            "client_cpu_cores": round(self.client_cpu_s / self.wall_s, 2) if self.wall_s else None,
        }


class RawClient:
    """One keep-alive HTTP/1.1 connection on asyncio streams: GET, status line, headers, a body by
    Content-Length or chunked. A tenth of httpx's CPU per request: the flood case (a refused client
    asks again at once, thousands of times a second)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parsed = httpx.URL(base_url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, dict[str, str]]:
        try:
            return await asyncio.wait_for(self._get(path), self.timeout)
        except BaseException:
            await self.close()  # a connection in an unknown state is never reused
            raise

    async def _get(self, path: str) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        target = httpx.URL(path).raw_path.decode("ascii")
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode("ascii"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers


async def _one_raw(client: RawClient, path: str) -> Sample:
    t0 = time.perf_counter()
    try:
        code, headers = await client.get(path)
        status, retry_after = str(code), headers.get("retry-after")
    except TimeoutError:
        status, retry_after = "timeout", None
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        status, retry_after = type(exc).__name__, None
    return Sample(status, time.perf_counter() - t0, path, retry_after)


async def _one(client: httpx.AsyncClient, path: str) -> Sample:
    t0 = time.perf_counter()
    try:
        response = await client.get(path)
        status, retry_after = str(response.status_code), response.headers.get("retry-after")
    except httpx.TimeoutException:
        status, retry_after = "timeout", None
    except httpx.HTTPError as exc:
        status, retry_after = type(exc).__name__, None
    return Sample(status, time.perf_counter() - t0, path, retry_after)


async def _probe(base_url: str, timeout: float, give_up: float) -> dict[str, Any]:
    """From the end of the load: GET /changes every 0.1 s until a 200 (a fresh client, as a user
    arriving just after the load would be)."""
    start = time.perf_counter()
    first: Sample | None = None
    tries = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        while True:
            sample = await _one(client, PROBE_PATH)
            tries += 1
            first = first or sample
            if sample.status == "200":
                return {
                    "recovery_s": round(time.perf_counter() - start, 3),
                    "first_status": first.status,
                    "first_s": round(first.seconds, 3),
                    "tries": tries,
                }
            if time.perf_counter() - start > give_up:
                return {
                    "recovery_s": None,
                    "first_status": first.status,
                    "first_s": round(first.seconds, 3),
                    "tries": tries,
                }
            await asyncio.sleep(0.1)


async def drive(
    base_url: str,
    clients: int,
    duration: float,
    pick: Callable[[random.Random], str],
    *,
    timeout: float = 60.0,
    seed: int = 1,
    client: str = "httpx",
) -> LoadRun:
    """`clients` concurrent clients for `duration` seconds, then the recovery probe."""
    samples: list[Sample] = []
    stop = asyncio.Event()
    # httpx clients are built before the clock starts: building one (its TLS context) blocks the
    # event loop ~15 ms, and 200 of them would be counted as the first requests' latency.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = (
        [httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) for _ in range(clients)]
        if client == "httpx"
        else []
    )
    started = time.perf_counter()
    cpu_started = time.process_time()
    end = started + duration

    async def one_client(n: int) -> None:
        rng = random.Random(seed * 100_003 + n)
        if client == "raw":
            raw = RawClient(base_url, timeout)
            try:
                while not stop.is_set():
                    samples.append(await _one_raw(raw, pick(rng)))
            finally:
                await raw.close()
            return
        async with https[n] as http:
            while not stop.is_set():
                samples.append(await _one(http, pick(rng)))

    tasks = [asyncio.create_task(one_client(n)) for n in range(clients)]
    await asyncio.sleep(max(0.0, end - time.perf_counter()))
    stop.set()
    recovery = await _probe(base_url, timeout, give_up=timeout + 30)
    await asyncio.gather(*tasks)
    drained = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as fresh:
        after = await _one(fresh, PROBE_PATH)  # the first request once every client has its answer
    run = LoadRun(clients, duration, samples, recovery)
    run.client_cpu_s = time.process_time() - cpu_started
    run.after = {
        "status": after.status,
        "seconds": round(after.seconds, 3),
        "clients_done_after_stop_s": round(drained - end, 3),
    }
    run.wall_s = time.perf_counter() - started
    return run


def run_load(
    base_url: str, clients: int, duration: float, pick: Callable[[random.Random], str], **kw: Any
) -> LoadRun:
    """`drive` on a fresh event loop (uvloop when installed: less client CPU per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(drive(base_url, clients, duration, pick, **kw))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(drive(base_url, clients, duration, pick, **kw))


# --- the store --------------------------------------------------------------------------------


def ensure_store(docs: int, versions: int, db: str | None, log: Callable[[str], None]) -> str:
    """A store of `docs` x `versions` (built once, reused: var/bench/web-load-<docs>x<versions>.db)."""
    from benchmarks.web_bench import build_store

    if db:
        log(f"building the store in {db}")
        log(f"built {build_store(db, docs, versions)}")
        return db
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"web-load-{docs}x{versions}.db"
    done = path.with_suffix(".done")
    url = f"sqlite:///{path}"
    if not done.exists():
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        log(f"building the store {path} ({docs} documents x {versions} versions)")
        log(f"built {build_store(url, docs, versions)}")
        done.write_text("ok\n")
    return url


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_before": os.getloadavg(),
    }


@contextlib.contextmanager
def _logged(name: str) -> Iterator[Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{name}-server.log"
    path.write_bytes(b"")
    yield path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per level (default 30)")
    parser.add_argument(
        "--clients", default="10,50,200", help="concurrent clients per level (default 10,50,200)"
    )
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument(
        "--db", help="an empty database URL to build the store in (default: SQLite in var/bench)"
    )
    parser.add_argument(
        "--server",
        choices=("web", "cli"),
        default="web",
        help="python -m policywatch.web.server | policywatch web",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="client timeout per request (default 60 s)"
    )
    parser.add_argument("--pause", type=float, default=5.0, help="seconds of rest between levels")
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="httpx (default) or a lean asyncio HTTP/1.1 client (floods the server with retries)",
    )
    parser.add_argument("--name", default="web-load")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)

    url = ensure_store(args.docs, args.versions, args.db, log)
    pick = change_and_search_paths(args.docs)
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "python -m benchmarks.web_load " + " ".join(argv if argv is not None else sys.argv[1:]),
        "server": "python -m policywatch.web.server" if args.server == "web" else "policywatch web",
        "database": url.split(":", 1)[0],
        "store": {"documents": args.docs, "versions_per_document": args.versions},
        "client_timeout_s": args.timeout,
        "client": args.client,
        "mix": "change list (/changes, /api/changes, filtered, deeper pages) and search (/search, /api/search; 3+ characters)",
        "levels": [],
    }
    with _logged(args.name) as server_log, Server(url, args.server, log_path=server_log) as server:
        log(f"server {report['server']} on {server.base_url} (log: {server_log})")
        run_load(server.base_url, 4, 2.0, pick, client=args.client)  # warm up, as a running server is
        for clients in levels:
            time.sleep(args.pause)
            cpu0, t0 = server.cpu_seconds(), time.perf_counter()
            run = run_load(
                server.base_url, clients, args.duration, pick, timeout=args.timeout, client=args.client
            )
            cpu1, t1 = server.cpu_seconds(), time.perf_counter()
            summary = run.summary()
            if cpu0 is not None and cpu1 is not None:
                summary["server_cpu_cores"] = round((cpu1 - cpu0) / (t1 - t0), 2)
            report["levels"].append(summary)
            lat = summary["latency_all_s"]
            log(
                f"{clients:>4} clients: {summary['requests_per_s']:>7.1f} req/s ({summary['ok_per_s']:.1f} 200/s), "
                f"p50 {lat['p50']:.3f} s, p99 {lat['p99']:.3f} s, max {lat['max']:.3f} s, "
                f"status {summary['by_status']}, recovery {summary['recovery']}"
            )
    report["machine"]["loadavg_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}-{datetime.now(UTC).date().isoformat()}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
