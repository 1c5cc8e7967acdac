"""Sources that quietly stop: degraded after N failing cycles, one notice each way, a red Airflow task.

A real local site, real cycles, a real database (SQLite and PostgreSQL), a real SMTP server on
loopback for the operators' notices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from policywatch import tasks
from policywatch.cli import main
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.health import CycleHealth, SourceDegraded, assess_cycle, record_health
from policywatch.pipeline import CycleSummary, run_cycle
from storage.db import session_factory
from storage.models import OperatorNotice, SentMail, Source
from tests.support import world as harness
from tests.support.site import LocalSite
from tests.support.smtp import SmtpServer

PARAGRAPHS = corpus_paragraphs("004")
OPERATOR = "ops@example.org"


def failure(error: str, url: str = "http://s/x") -> dict[str, str]:
    return {"source": "s", "url": url, "error": error}


@pytest.mark.parametrize(
    ("summary", "failing", "reached"),
    [
        (CycleSummary(succeeded=5, unchanged=5), False, True),
        (CycleSummary(failures=[failure("listing: HTTP 503")]), True, False),
        (CycleSummary(succeeded=3, failures=[failure("listing: no document links found")]), True, True),
        (CycleSummary(failures=[failure("timeout"), failure("HTTP 502")]), True, False),
        (CycleSummary(succeeded=1, failures=[failure("challenge:jiasule")] * 3), True, True),
        (CycleSummary(succeeded=9, failures=[failure("challenge:rivers")]), False, True),
        (CycleSummary(succeeded=4, changed=4, shrunk=3), True, True),
        (CycleSummary(succeeded=10, changed=2, unchanged=8, shrunk=2), False, True),
        (CycleSummary(failures=[failure("skipped: another cycle runs")]), False, True),
        (CycleSummary(failures=[{"source": "other", "url": "u", "error": "listing: HTTP 500"}]), False, True),
    ],
    ids=[
        "ok",
        "listing-refused",
        "listing-empty",
        "every-page-fails",
        "challenges-persist",
        "one-challenge",
        "texts-shrink",
        "a-few-shrink",
        "skipped",
        "another-sources-failure",
    ],
)
def test_assess_cycle(summary: CycleSummary, failing: bool, reached: bool) -> None:
    health = assess_cycle("s", summary)
    assert health.failing is failing
    if failing:
        assert health.reason and health.reached_anything is reached


@dataclass
class World(harness.World):
    """One source, `s`, degraded after 2 failing cycles, listing three documents; its schema made
    up front and its sources.yaml written (the tests load it, as `policywatch run` does)."""

    config_path: Path = field(init=False)

    schema_first = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.config_path = self.write_config()
        for n in range(3):
            self.site.put(f"/content/{n}.html", gov_cn_page(f"第{n}号通知", PARAGRAPHS[n * 5 : n * 5 + 6]))
        self.listing_up()

    def config_text(self) -> str:
        return harness.sources_yaml(
            harness.source_entry(self.site, "s", "试点"),
            settings={"backoff_base_s": 0.01, "max_attempts": 1, "degraded_after": 2},
        )

    def listing_up(self) -> None:
        """The listing answers, with the three documents."""
        self.put_listing_page(((f"/content/{n}.html", str(n)) for n in range(3)), items=False)

    def listing_down(self) -> None:
        """The listing answers 503."""
        self.site.put("/list/", "<html><body>维护中</body></html>", status=503)

    def state(self) -> tuple[str, int]:
        """The source's health state and its count of consecutive failing cycles."""
        with self.sessions() as session:
            src = session.get(Source, "s")
            assert src is not None
            return src.health_state, src.consecutive_failures


@pytest.fixture
def world(site: LocalSite, db_url: str, tmp_path: Path) -> Iterator[World]:
    with World(site, db_url, tmp_path) as w:
        yield w


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", server.url)
    monkeypatch.setenv("POLICYWATCH_OPERATOR_EMAILS", OPERATOR)
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    yield server
    server.stop()


def notices(server: SmtpServer) -> list[str]:
    return [m.header("X-Policywatch-Event") for m in server.messages if OPERATOR in m.rcpt_tos]


def test_a_source_that_stops_is_degraded_once_and_recovers_once(
    world: World, smtp: SmtpServer, capsys
) -> None:  # type: ignore[no-untyped-def]
    def cycle() -> dict:
        capsys.readouterr()
        assert main(["--config", str(world.config_path), "run", "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    assert cycle()["health"]["s"]["state"] == "up"
    world.listing_down()
    first = cycle()["health"]["s"]
    assert (first["state"], first["consecutive_failures"]) == ("up", 1) and notices(smtp) == []
    second = cycle()["health"]["s"]
    # The documents still answer, the listing does not: degraded (down: nothing answers at all).
    assert second["state"] == "degraded" and "listing: HTTP 503" in second["reason"]
    assert world.site.url("/list/") in second["reason"]
    cycle()  # still degraded: no second mail
    assert notices(smtp) == ["source-degraded"]
    [mail] = [m for m in smtp.messages if OPERATOR in m.rcpt_tos]
    assert "s is degraded" in mail.header("Subject") and "HTTP 503" in mail.part("plain")
    with session_factory(world.engine)() as session:  # on the web app's Mail page too
        [sent] = session.scalars(select(SentMail).where(SentMail.kind == "notice")).all()
        assert "is degraded" in sent.subject
    world.listing_up()
    recovered = cycle()["health"]["s"]
    assert (recovered["state"], recovered["consecutive_failures"], recovered["reason"]) == ("up", 0, None)
    assert notices(smtp) == ["source-degraded", "source-recovered"]


def test_notices_wait_for_a_dead_smtp_server_and_go_once_when_it_is_back(
    world: World, smtp: SmtpServer
) -> None:
    config_path = str(world.config_path)
    from policywatch.config import load_config

    config = load_config(config_path)
    run_cycle(config, world.engine)
    world.listing_down()
    for n in range(3):  # the whole site refuses: down
        world.site.put(f"/content/{n}.html", "busy", status=503)
    smtp.stop()
    run_cycle(config, world.engine)
    run_cycle(config, world.engine)
    assert world.state() == ("down", 2)
    with session_factory(world.engine)() as session:
        [pending] = session.scalars(select(OperatorNotice)).all()
        assert pending.status == "pending" and pending.kind == "degraded"
    smtp.start()
    run_cycle(config, world.engine)  # still failing: no new notice, the pending one goes now
    run_cycle(config, world.engine)
    assert notices(smtp) == ["source-degraded"]


def test_the_airflow_tasks_go_red_while_degraded_and_a_retry_counts_the_cycle_once(
    world: World, smtp: SmtpServer
) -> None:
    path = str(world.config_path)

    def airflow_cycle(retries: int = 0) -> dict:
        plan = tasks.discover_source("s", path)
        results = [tasks.process_batch(b, path) for b in plan["new_batches"] + plan["due_batches"]]
        for _ in range(retries):  # a retry of the closing task: the same cycle
            tasks.finish(plan, results, path)
        return tasks.finish(plan, results, path)

    assert tasks.check_health(airflow_cycle(), path)["state"] == "up"
    world.listing_down()
    changes = airflow_cycle(retries=2)
    assert world.state() == ("up", 1)  # one failing cycle, however often its task ran
    tasks.check_health(changes, path)
    changes = airflow_cycle()
    with pytest.raises(SourceDegraded, match="listing: HTTP 503"):
        tasks.check_health(changes, path)
    assert notices(smtp) == ["source-degraded"]


def test_health_is_recorded_once_per_cycle(world: World) -> None:
    run_cycle(
        __import__("policywatch.config", fromlist=["x"]).load_config(str(world.config_path)), world.engine
    )
    failing = CycleHealth(True, "listing: HTTP 503", "http://x/list/", reached_anything=False)
    factory = session_factory(world.engine)
    for cycle_id in ("a", "a", "a", "b"):
        with factory.begin() as session:
            record_health(session, "s", failing, cycle_id, degraded_after=3)
    assert world.state() == ("up", 2)


def test_the_dashboard_shows_up_degraded_down(world: World) -> None:
    from fastapi.testclient import TestClient

    from policywatch.config import load_config
    from policywatch.web import create_app

    config = load_config(str(world.config_path))
    run_cycle(config, world.engine)
    world.listing_down()
    run_cycle(config, world.engine)
    with TestClient(create_app(world.engine)) as client:
        [one] = client.get("/api/dashboard").json()["health"]
        assert (one["state"], one["consecutive_failures"]) == ("up", 1)
        run_cycle(config, world.engine)
        [two] = client.get("/api/dashboard").json()["health"]
        page = client.get("/dashboard").text
    assert two["state"] == "degraded" and "HTTP 503" in two["state_reason"]
    assert "state-degraded" in page and "2 failing cycles in a row" in page
