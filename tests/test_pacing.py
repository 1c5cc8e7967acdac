"""Politeness across processes: requests to one host from several processes (Airflow batches on
several workers) stay `min_delay_s` apart as the server sees them, and a process killed while it
holds the host's turn does not stall the host."""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from crawlers.pacing import FilePacer, LocalPacer, host_file_name
from policywatch.locking import SourceBusy, source_lock
from policywatch.observe import shared_pacer
from storage.db import ensure_schema, make_engine
from storage.host_turns import PostgresPacer
from tests.conftest import _reset_postgres
from tests.support.site import LocalSite

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 0.05
PROCESSES = 3
PAGES = 8


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.pace_worker", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _gaps_between_arrivals(site: LocalSite, kind: str, target: str) -> list[float]:
    """PROCESSES processes fetch PAGES pages each from `site`, all at once; the gaps the server saw."""
    for n in range(PROCESSES * PAGES):
        site.put(f"/p/{n}.html", f"<html><body><p>第{n}页</p></body></html>")
    workers = []
    for w in range(PROCESSES):
        urls = [site.url(f"/p/{w * PAGES + i}.html") for i in range(PAGES)]
        workers.append(_spawn(kind, target, str(INTERVAL), *urls))
    for proc in workers:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in workers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in workers:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
    arrivals = sorted(r.at for r in site.requests if r.path.startswith("/p/"))
    assert len(arrivals) == PROCESSES * PAGES
    return [b - a for a, b in itertools.pairwise(arrivals)]


@pytest.fixture
def pg_store(pg_database: str) -> str:
    _reset_postgres(pg_database)
    engine = make_engine(pg_database)
    ensure_schema(engine)
    engine.dispose()
    return pg_database


def test_processes_with_their_own_pacers_crowd_the_host(site: LocalSite) -> None:
    # The control: per-process politeness is not politeness once a host's batches run in parallel.
    gaps = _gaps_between_arrivals(site, "local", "-")
    assert min(gaps) < INTERVAL * 0.5


def test_a_file_pacer_keeps_the_host_interval_across_processes(site: LocalSite, tmp_path: Path) -> None:
    gaps = _gaps_between_arrivals(site, "file", str(tmp_path / "turns"))
    assert min(gaps) >= INTERVAL, sorted(gaps)[:5]


def test_a_postgres_pacer_keeps_the_host_interval_across_processes(site: LocalSite, pg_store: str) -> None:
    gaps = _gaps_between_arrivals(site, "postgres", pg_store)
    assert min(gaps) >= INTERVAL, sorted(gaps)[:5]


@pytest.mark.parametrize("kind", ["file", "postgresql"])
def test_a_process_killed_during_its_turn_does_not_stall_the_host(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "file":
        target, pacer = str(tmp_path / "turns"), FilePacer(tmp_path / "turns")
    else:
        target = request.getfixturevalue("pg_store")
        pacer = PostgresPacer(target)
    worker_kind = "file" if kind == "file" else "postgres"
    holder = _spawn(worker_kind, target, "30", "hold")
    waiter: subprocess.Popen[str] | None = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        waiter = _spawn(worker_kind, target, "0.01", "hold")
        assert waiter.stdout is not None
        # While the holder lives, the host's turn is not the waiter's: it prints nothing.
        readable, _, _ = select.select([waiter.stdout], [], [], 1.5)
        assert readable == [] and waiter.poll() is None
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        # Killed mid-turn: the kernel (flock) or the server (a closed connection) gives the turn back.
        assert waiter.stdout.readline().strip() == "holding"
        assert time.monotonic() - started < 10
        waiter.kill()
        waiter.wait(timeout=10)
        with pacer.turn("127.0.0.1", 0.01):
            pass
    finally:
        for proc in (holder, waiter):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        pacer.close()


def test_turns_are_kept_per_host_in_files_no_host_name_can_escape(tmp_path: Path) -> None:
    names = {host_file_name(h) for h in ("www.gov.cn", "WWW.GOV.CN.", "../../etc/passwd", "a/b", "")}
    assert all("/" not in n and not n.startswith(".") for n in names)
    assert host_file_name("www.gov.cn") != host_file_name("www.gov.cn.evil")
    pacer = FilePacer(tmp_path / "t")
    with pacer.turn("../../x", 0.01):
        pass
    assert [p.parent for p in (tmp_path / "t").iterdir()] == [tmp_path / "t"]


def test_the_interval_runs_from_the_end_of_the_previous_request(tmp_path: Path) -> None:
    pacer = FilePacer(tmp_path / "t")
    with pacer.turn("h", 0.2):
        time.sleep(0.3)  # a slow answer
    ended = time.monotonic()
    with pacer.turn("h", 0.2):
        waited = time.monotonic() - ended
    assert waited >= 0.19


def test_the_store_decides_which_pacer_is_shared(tmp_path: Path, pg_store: str) -> None:
    assert isinstance(shared_pacer(f"sqlite:///{tmp_path / 'pw.db'}"), FilePacer)
    assert (tmp_path / "pw.db.turns").is_dir()
    assert isinstance(shared_pacer("sqlite://"), LocalPacer)
    pg = shared_pacer(pg_store)
    try:
        assert isinstance(pg, PostgresPacer)
    finally:
        pg.close()


def test_batches_share_the_run_lock_on_postgres_and_a_cycle_waits_for_them(pg_store: str) -> None:
    engine = create_engine(pg_store)
    try:
        with (
            source_lock(engine, "s", shared=True),
            source_lock(engine, "s", shared=True),
            pytest.raises(SourceBusy),
            source_lock(engine, "s", wait_s=0.3),
        ):
            pass
        with (
            source_lock(engine, "s"),
            pytest.raises(SourceBusy),
            source_lock(engine, "s", wait_s=0.3, shared=True),
        ):
            pass
    finally:
        engine.dispose()


def test_on_sqlite_a_shared_run_lock_is_exclusive(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pw.db'}")
    ensure_schema(engine)
    try:
        with (
            source_lock(engine, "s", shared=True),
            pytest.raises(SourceBusy),
            source_lock(engine, "s", wait_s=0.3, shared=True),
        ):
            pass
    finally:
        engine.dispose()
