"""Process faults: `policywatch run` as a real process, killed with SIGKILL at several points, run
twice at once, and run while the database is away. Afterwards: no duplicate version, no lost or
doubled event, every (subscriber, event) mailed exactly once.

Everything is local: the site and an SMTP server on 127.0.0.1, SQLite and PostgreSQL via `db_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from alerts import deliver_pending, settings_from_env
from alerts.outbox import LEASE
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from storage.models import ChangeEvent, Document, DocumentVersion, utcnow
from tests.support import world as harness
from tests.support.site import LocalSite, Page, RequestInfo

PROJECT = Path(__file__).resolve().parent.parent
PARAS = corpus_paragraphs("004")
DOCS = 12
SUBSCRIBER = "analyst@example.org"
WAIT_S = 60.0


def doc_path(i: int) -> str:
    return f"/content/{i}.html"


def doc_page(i: int, edition: int) -> str:
    paras = PARAS[1 + i : 20 + i] + [f"第{n}版 补充条款：数字经济统计口径调整。" for n in range(edition)]
    return gov_cn_page(f"关于推进数字经济发展的通知（第{i}号）", paras, counter=edition * 100 + i)


# --- an SMTP server that can hold a message -----------------------------------------------------


@dataclass
class HoldingSink:
    """Accepts every message, except that it can hold the `hold_at`-th one until released (and then
    refuses it, as a server that never got to answer)."""

    hold_at: int | None = None
    received: list[email.message.Message] = field(default_factory=list)
    seen: int = 0
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.seen += 1
        if self.hold_at is not None and self.seen == self.hold_at:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 try again later"
        for rcpt in envelope.rcpt_tos:
            message = email.message_from_bytes(envelope.content)
            message["X-Test-Rcpt"] = rcpt
            self.received.append(message)
        return "250 OK"

    def deliveries(self) -> Counter[tuple[str, str]]:
        """(recipient, change id) -> how many times it arrived."""
        counts: Counter[tuple[str, str]] = Counter()
        for m in self.received:
            for change_id in str(m["X-Policywatch-Change-Id"]).split(","):
                counts[(str(m["X-Test-Rcpt"]), change_id.strip())] += 1
        return counts


@pytest.fixture
def smtp() -> Iterator[tuple[HoldingSink, str]]:
    sink = HoldingSink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, f"smtp://127.0.0.1:{port}"
    finally:
        sink.release.set()
        controller.stop()


# --- the world: a site, a config, a database ------------------------------------------------------


@dataclass
class ProcessWorld(harness.World):
    """One source, `kill-test`, listing DOCS documents, run by `policywatch run` as a process;
    with `smtp_url`, one subscriber to every source and the SMTP server the process mails."""

    smtp_url: str | None = None
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.config_path = self.write_config()
        self.put_listing()
        self.serve(edition=0)

    def config_text(self) -> str:
        subscribers = f"  - email: {SUBSCRIBER}\n    sources: ['*']" if self.smtp_url else None
        return harness.sources_yaml(
            harness.source_entry(self.site, "kill-test", "进程故障", concurrency=2),
            subscribers=subscribers,
            settings={"max_attempts": 1, "read_timeout_s": 30},
        )

    def put_listing(self) -> None:
        """The listing of every document."""
        self.put_listing_page(((doc_path(i), str(i)) for i in range(DOCS)), items=False)

    def serve(self, edition: int) -> None:
        """Every document, in its `edition`."""
        for i in range(DOCS):
            self.site.put(doc_path(i), doc_page(i, edition))

    def env(self, db_url: str | None = None) -> dict[str, str]:
        """The environment of a `policywatch` process (on `db_url`, else the world's store)."""
        env = {
            **os.environ,
            "POLICYWATCH_DATABASE_URL": db_url or self.url,
            "POLICYWATCH_CONFIG": str(self.config_path),
        }
        env.pop("POLICYWATCH_SMTP_URL", None)
        if self.smtp_url:
            env["POLICYWATCH_SMTP_URL"] = self.smtp_url
        return env

    def start(self, *args: str, db_url: str | None = None) -> subprocess.Popen[str]:
        """Start `policywatch run ARGS` as a process."""
        return subprocess.Popen(
            [sys.executable, "-m", "policywatch.cli", "run", *args],
            env=self.env(db_url),
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `policywatch run ARGS` as a process, to its end."""
        proc = self.start(*args, db_url=db_url)
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def doc_requests(self) -> int:
        """How many requests for documents the site has had."""
        return sum(self.site.hits[doc_path(i)] for i in range(DOCS))

    def versions_per_document(self) -> list[int]:
        """How many versions each document has, fewest first."""
        with self.sessions() as s:
            rows = s.execute(
                select(Document.url, func.count(DocumentVersion.id))
                .join(DocumentVersion, DocumentVersion.document_id == Document.id)
                .group_by(Document.url)
            ).all()
        return sorted(n for _, n in rows)

    def distinct_versions(self) -> int:
        """How many distinct (document, content) versions the store holds."""
        with self.sessions() as s:
            return len(
                s.execute(select(DocumentVersion.document_id, DocumentVersion.content_hash).distinct()).all()
            )

    def events(self) -> list[tuple[str, int]]:
        """(kind, document id) of every change event, sorted."""
        return sorted(self.event_pairs())

    def event_ids(self) -> set[str]:
        """The id of every change event, as the alerts' X-Policywatch-Change-Id names it."""
        with self.sessions() as s:
            return {str(i) for i in s.scalars(select(ChangeEvent.id))}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def holding(site: LocalSite, path: str, release: threading.Event, seen: threading.Event) -> None:
    """Make `path` wait (without answering) until `release` is set; `seen` is set when it is asked."""
    page = site.pages[path]
    assert isinstance(page, Page)

    def handler(_: RequestInfo) -> Page:
        seen.set()
        release.wait(WAIT_S)
        return page

    site.pages[path] = handler


@pytest.fixture
def world(site: LocalSite, db_url: str, tmp_path: Path) -> Iterator[ProcessWorld]:
    with ProcessWorld(site, db_url, tmp_path) as w:
        yield w


# --- SIGKILL in the middle of a cycle -------------------------------------------------------------

KILL_POINTS = ["listing", "first-fetch", "mid-fetch", "after-8-pages", "mid-smtp"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_mid_cycle_then_rerun(
    site: LocalSite, db_url: str, tmp_path: Path, smtp: tuple[HoldingSink, str], point: str
) -> None:
    sink, smtp_url = smtp
    world = ProcessWorld(site, db_url, tmp_path, smtp_url=smtp_url)
    try:
        first = world.run()
        assert first.returncode == 0, first.stderr
        assert world.versions_per_document() == [1] * DOCS and world.events() == []
        world.serve(edition=1)  # every document changes in substance

        release, seen = threading.Event(), threading.Event()
        if point == "listing":
            holding(site, "/list/", release, seen)
        elif point == "first-fetch":
            holding(site, doc_path(0), release, seen)
        elif point == "mid-fetch":
            holding(site, doc_path(DOCS // 2), release, seen)
        elif point == "mid-smtp":
            sink.hold_at = 3
        before = world.doc_requests()
        proc = world.start()
        try:
            if point == "after-8-pages":
                wait_for(lambda: world.doc_requests() - before >= 8, "8 page requests")
            elif point == "mid-smtp":
                wait_for(sink.holding.is_set, "the third alert")
            else:
                wait_for(seen.is_set, f"the request held at {point}")
            kill(proc)
        finally:
            if proc.poll() is None:
                kill(proc)
            release.set()
            sink.release.set()
        # The killed cycle left whole documents or none: never half an observation.
        assert all(n in (1, 2) for n in world.versions_per_document())

        world.put_listing()
        world.serve(edition=1)
        again = world.run()
        assert again.returncode == 0, again.stderr
        assert "skipped" not in again.stdout  # the dead cycle's run lock did not block the rerun

        assert world.versions_per_document() == [2] * DOCS
        assert world.distinct_versions() == 2 * DOCS
        events = world.events()
        assert [kind for kind, _ in events] == ["changed"] * DOCS
        assert len({doc for _, doc in events}) == DOCS
        # An alert the killed deliverer had claimed waits for its lease; a later pass sends it.
        deliver_pending(
            world.engine,
            settings_from_env({"POLICYWATCH_SMTP_URL": smtp_url}),
            now=utcnow() + LEASE + timedelta(minutes=1),
        )
        deliveries = sink.deliveries()
        assert set(deliveries) == {(SUBSCRIBER, i) for i in world.event_ids()}
        assert set(deliveries.values()) == {1}, deliveries
    finally:
        world.engine.dispose()


def test_sigkill_during_the_baseline_then_rerun(world: ProcessWorld, site: LocalSite) -> None:
    release, seen = threading.Event(), threading.Event()
    holding(site, doc_path(7), release, seen)
    proc = world.start()
    try:
        wait_for(seen.is_set, "the held page")
        kill(proc)
    finally:
        release.set()
    world.serve(edition=0)
    again = world.run("--json")
    assert again.returncode == 0, again.stderr
    # Still the baseline (the killed cycle never finished it): recorded silently, once each.
    assert world.versions_per_document() == [1] * DOCS
    assert world.events() == []


# --- two cycles at once ---------------------------------------------------------------------------


def test_a_second_cycle_skips_a_source_that_is_being_run(world: ProcessWorld, site: LocalSite) -> None:
    assert world.run().returncode == 0
    world.serve(edition=1)
    release, seen = threading.Event(), threading.Event()
    holding(site, "/list/", release, seen)
    first = world.start()
    try:
        wait_for(seen.is_set, "the first cycle's listing request")
        second = world.run()
        assert second.returncode == 0, second.stderr
        assert "skipped: another cycle is running source kill-test" in second.stdout
        assert site.hits["/list/"] == 2  # the baseline's and the first cycle's: none from the second
    finally:
        release.set()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert world.versions_per_document() == [2] * DOCS
    assert [kind for kind, _ in world.events()] == ["changed"] * DOCS


@pytest.mark.parametrize("phase", ["baseline", "warm"])
def test_two_cycles_started_at_once(world: ProcessWorld, site: LocalSite, phase: str) -> None:
    if phase == "warm":
        assert world.run().returncode == 0
        world.serve(edition=1)
    else:
        # The schema first: two first-ever runs that both migrate an empty database at once are
        # not covered by the run lock (it lives in the schema); see storage.db.upgrade.
        upgrade = subprocess.run(
            [sys.executable, "-m", "policywatch.cli", "db", "upgrade"],
            env=world.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upgrade.returncode == 0, upgrade.stderr
    for i in range(DOCS):  # slow pages, so that the two cycles overlap
        page = site.pages[doc_path(i)]
        assert isinstance(page, Page)
        page.delay_s = 0.05
    procs = [world.start(), world.start()]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    skipped = sum("skipped: another cycle" in out for out, _ in results)
    assert skipped <= 1
    expected_versions = [1] * DOCS if phase == "baseline" else [2] * DOCS
    assert world.versions_per_document() == expected_versions
    assert world.distinct_versions() == sum(expected_versions)
    assert [kind for kind, _ in world.events()] == ([] if phase == "baseline" else ["changed"] * DOCS)


# --- the database away for a moment ---------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_url(db_url: str, tmp: Path) -> str:
    if db_url.startswith("sqlite"):
        (tmp / "a-directory.db").mkdir()
        return f"sqlite:///{tmp / 'a-directory.db'}"
    host_part = db_url.split("@", 1)[1].split("/", 1)[0]
    return db_url.replace(host_part, f"127.0.0.1:{closed_port()}")


def test_database_unreachable_then_back(world: ProcessWorld, db_url: str, tmp_path: Path) -> None:
    down = world.run(db_url=unreachable_url(db_url, tmp_path))
    assert down.returncode == 1
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("policywatch: "), down.stderr
    assert "Traceback" not in down.stderr
    back = world.run("--json")
    assert back.returncode == 0, back.stderr
    assert world.versions_per_document() == [1] * DOCS


class PgProxy:
    """A TCP proxy to PostgreSQL on 127.0.0.1 that can drop every connection and refuse new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = closed_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        if self.listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_postgres_lost_mid_cycle_fails_cleanly_and_the_next_cycle_catches_up(
    site: LocalSite, pg_database: str, tmp_path: Path
) -> None:
    from tests.conftest import _reset_postgres

    _reset_postgres(pg_database)
    proxy = PgProxy(int(pg_database.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]))
    proxy.up()
    through_proxy = pg_database.replace(
        pg_database.split("@", 1)[1].split("/", 1)[0], f"127.0.0.1:{proxy.port}"
    )
    world = ProcessWorld(site, through_proxy, tmp_path)
    try:
        assert world.run().returncode == 0
        world.serve(edition=1)
        release, seen = threading.Event(), threading.Event()
        holding(site, doc_path(6), release, seen)
        proc = world.start()
        wait_for(seen.is_set, "the held page")
        proxy.down()  # the database goes away in the middle of the cycle
        release.set()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("policywatch: database error"), err
        partial = world.versions_per_document
        proxy.up()
        assert all(n in (1, 2) for n in partial())
        world.serve(edition=1)
        again = world.run()
        assert again.returncode == 0, again.stderr
        assert world.versions_per_document() == [2] * DOCS
        assert [kind for kind, _ in world.events()] == ["changed"] * DOCS
    finally:
        world.engine.dispose()
        proxy.down()
