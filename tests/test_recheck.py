"""Keeping up with real sites, end to end: new documents first, re-checks when due, per-host budgets.

A real local site, real cycles, a real database (SQLite and PostgreSQL). The pure policy and
planner are tested in test_schedule.py; here, what a cycle does with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select

from policywatch.cli import main
from policywatch.config import parse_config
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.observe import make_fetcher
from policywatch.pipeline import plan_source
from policywatch.planning import check_history, sources_per_host
from policywatch.schedule import recheck_interval_s
from storage.models import ChangeEvent, Document, FetchAttempt, Source, utcnow
from storage.store import known_documents
from tests.support import world as harness
from tests.support.site import LocalSite

PARAGRAPHS = corpus_paragraphs("004")
# Another policy's text, for the documents published after the baseline (not a repost of one).
OTHER = corpus_paragraphs("000")
T = TypeVar("T")


@dataclass
class World(harness.World):
    """One source, `big`, listed at /list/, its schema made up front and its sources.yaml written
    (for `policywatch run`); `extra`: raw YAML lines of the source, `settings`: of the settings."""

    extra: str = ""
    settings: str = ""
    listed: list[str] = field(default_factory=list)
    config_path: Path = field(init=False)

    schema_first = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.config_path = self.write_config()

    def config_text(self) -> str:
        return harness.sources_yaml(
            harness.source_entry(self.site, "big", "大站", extra=self.extra),
            settings={"backoff_base_s": 0.01, "max_attempts": 1, "read_timeout_s": 5},
            settings_extra=self.settings,
        )

    def publish(self, n: int, *, year: int = 2021, first: bool = False) -> str:
        """A document page dated in `year`, listed (at the top with `first`)."""
        path = f"/content/{n}.html"
        text = OTHER if year >= 2026 else PARAGRAPHS
        body = [*text[n % 20 : n % 20 + 8], f"第{n}号文件的正文。"]
        self.site.put(
            path, gov_cn_page(f"关于数字经济的第{n}号通知", body, pub_date=f"{year}-03-{1 + n % 28:02d}")
        )
        self.listed = [path, *self.listed] if first else [*self.listed, path]
        self.relist()
        return path

    def relist(self) -> None:
        """Serve the listing of every published page."""
        self.put_listing_page((p, "文件") for p in self.listed)

    def requests_during(self, work: Callable[[], T]) -> tuple[list[str], T]:
        """The paths the site was asked for while `work()` ran, and what it returned."""
        start = len(self.site.requests)
        result = work()
        return [r.path for r in self.site.requests[start:]], result

    def doc(self, path: str) -> Document:
        """The document at `path` of the site, as stored."""
        return self.document(self.site.url(path))

    def interval_s(self, path: str) -> float:
        """The re-check interval the policy gives the document at `path` now."""
        with self.sessions() as session:
            known = known_documents(session, "big")
            baseline_at = session.get(Source, "big").baseline_at  # type: ignore[union-attr]
        history = check_history(known[self.site.url(path)], baseline_at)
        return recheck_interval_s(history, self.config.sources[0].recheck_policy)


@pytest.fixture
def world(site: LocalSite, db_url: str, tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Make worlds: `world(extra=..., settings=...)`."""
    made: list[World] = []

    def make(extra: str = "", settings: str = "") -> World:
        made.append(World(site, db_url, tmp_path, extra, settings))
        return made[-1]

    yield make
    for w in made:
        w.close()


def test_a_new_document_is_fetched_and_recorded_before_any_known_one_is_rechecked(world) -> None:  # type: ignore[no-untyped-def]
    w = world()
    for n in range(40):
        w.publish(n)
    assert w.cycle().baseline == 40
    new = w.publish(99, year=2026, first=True)
    with w.sessions() as session:
        before = session.scalar(select(FetchAttempt.id).order_by(FetchAttempt.id.desc()).limit(1))
    paths, summary = w.requests_during(w.cycle)
    documents = [p for p in paths if p.startswith("/content/")]
    assert documents[0] == new and documents.count(new) == 1
    assert summary.new == 1 and summary.errors == 0
    assert len(documents) == 41  # a small site: what the budget leaves re-checks every known one
    with w.sessions() as session:
        event = session.scalar(select(ChangeEvent).where(ChangeEvent.kind == "new"))
        assert event is not None and event.url == w.site.url(new)
        rechecks = session.scalars(
            select(FetchAttempt.fetched_at).where(
                FetchAttempt.id > before,
                FetchAttempt.document_id.is_not(None),
                FetchAttempt.document_id != event.document_id,
            )
        ).all()
    # Its event was recorded before the first re-check was even sent.
    assert len(rechecks) == 40 and event.detected_at <= min(rechecks)


def test_the_per_host_budget_is_never_exceeded_and_nothing_is_lost(world) -> None:  # type: ignore[no-untyped-def]
    w = world(extra="    recheck: {budget: 10}")
    for n in range(30):
        w.publish(n)
    # The baseline is bigger than the budget: 8 documents a cycle (the listing and robots.txt take
    # two requests), the rest remembered; the baseline ends with the cycle that records the last.
    baselines = []
    for _ in range(4):
        paths, summary = w.requests_during(w.cycle)
        assert len(paths) <= 10
        baselines.append(summary.baseline)
    assert baselines == [8, 8, 8, 6]
    with w.sessions() as session:
        assert session.get(Source, "big").baseline_at is not None  # type: ignore[union-attr]
    # A new document published meanwhile is first, within the budget, and is `new`.
    new = w.publish(77, year=2026, first=True)
    paths, summary = w.requests_during(w.cycle)
    assert len(paths) <= 10 and next(p for p in paths if p.startswith("/content/")) == new
    assert summary.new == 1 and summary.rechecked + summary.early == 7
    # Re-checks rotate through every document within the budget: none is starved.
    checked_before = {n: w.doc(f"/content/{n}.html").last_checked_at for n in range(30)}
    for _ in range(4):
        paths, summary = w.requests_during(w.cycle)
        assert len(paths) <= 10 and summary.errors == 0
    assert all(w.doc(f"/content/{n}.html").last_checked_at > checked_before[n] for n in range(30))


def test_a_source_past_max_documents_still_gets_its_new_documents(world) -> None:  # type: ignore[no-untyped-def]
    w = world(extra="    max_documents: 5")
    for n in range(8):
        w.publish(n)
    assert [w.cycle().baseline for _ in range(2)] == [5, 3]
    new = w.publish(50, year=2026, first=True)
    paths, summary = w.requests_during(w.cycle)
    documents = [p for p in paths if p.startswith("/content/")]
    assert documents[0] == new and len(documents) == 5
    assert summary.new == 1


def test_a_removed_pages_recheck_interval_grows(world) -> None:  # type: ignore[no-untyped-def]
    w = world(extra="    recheck: {early: false}")
    gone = w.publish(1)
    w.publish(2)
    w.cycle()
    w.site.remove(gone)
    assert w.cycle(full=True).removed == 1
    intervals = [w.interval_s(gone)]
    for _ in range(4):
        w.cycle(full=True)  # still gone
        intervals.append(w.interval_s(gone))
    assert intervals == sorted(intervals) and len(set(intervals)) == len(intervals), intervals
    assert intervals[1] == 2 * intervals[0]
    # Not due now (early re-checks are off): a cycle leaves it alone; once its interval has passed,
    # the plan takes it.
    source = w.config.sources[0]
    fetcher = make_fetcher(w.config.settings)
    try:
        now_plan = plan_source(source, w.config, w.sessions, fetcher)
        later = plan_source(
            source, w.config, w.sessions, fetcher, now=utcnow() + timedelta(seconds=intervals[-1] + 60)
        )
    finally:
        fetcher.close()
    assert w.site.url(gone) not in [t.url for t in now_plan.due]
    assert w.site.url(gone) in [t.url for t in later.due]


def test_a_document_that_changes_is_rechecked_sooner(world) -> None:  # type: ignore[no-untyped-def]
    w = world(extra="    recheck: {early: false}")
    changing = w.publish(1, year=2020)
    steady = w.publish(2, year=2020)
    w.cycle()
    for k in range(4):
        body = [*PARAGRAPHS[1:9], f"第1号文件的正文，第{k}次修订。"]
        w.site.put(changing, gov_cn_page("关于数字经济的第1号通知", body, pub_date="2020-03-02"))
        assert w.cycle(full=True).changed == 1
    assert w.doc(changing).changes == 4 and w.doc(steady).changes == 0
    assert w.interval_s(changing) < w.interval_s(steady) / 4


def test_run_full_rechecks_every_document_and_reports_freshness(world, capsys, monkeypatch, db_url) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    w = world(extra="    recheck: {budget: 6, early: false}")
    for n in range(12):
        w.publish(n)
    while w.cycle().new_deferred:
        pass
    capsys.readouterr()
    paths, code = w.requests_during(lambda: main(["--config", str(w.config_path), "run", "--json"]))
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["rechecked"] == 0 and out["deferred"] == 0  # nothing due yet
    assert {"due", "rechecked", "deferred"} <= set(out) and "big" in out["freshness"]
    assert out["freshness"]["big"]["documents"] == 12
    paths, code = w.requests_during(lambda: main(["--config", str(w.config_path), "run", "--full", "--json"]))
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["rechecked"] == 12 and out["errors"] == 0
    assert sorted(p for p in paths if p.startswith("/content/")) == sorted(w.listed)
    assert out["freshness"]["big"]["oldest_check_age_s"] < 120


def test_sources_share_a_document_hosts_budget_whatever_their_listing_hosts() -> None:
    config = parse_config(
        """
sources:
  - id: search
    name: 政策库
    listings: [{url: "https://sousuo.www.gov.cn/search.json", kind: json, items: "data.list"}]
    document_hosts: [www.gov.cn]
  - id: latest
    name: 最新政策
    listing_urls: ["https://www.gov.cn/zhengce/zuixin/"]
    link_pattern: "/zhengce/content/"
"""
    )
    search, latest = config.sources
    # Their documents take turns at one host (crawlers.pacing keys turns by host name).
    assert search.fetch_hosts[0] == latest.fetch_hosts[0] == "www.gov.cn"
    # The host budget of www.gov.cn is shared by the two sources that fetch documents there.
    assert sources_per_host(config)["www.gov.cn"] == 2


def test_the_dashboard_shows_each_sources_freshness_and_budget_use(world) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from policywatch.web import create_app

    w = world(extra="    recheck: {budget: 6}")
    for n in range(8):
        w.publish(n)
    while w.cycle().new_deferred:
        pass
    w.cycle()
    with TestClient(create_app(w.engine)) as client:
        health = client.get("/api/dashboard").json()["health"]
        page = client.get("/dashboard").text
    [big] = health
    fresh = big["freshness"]
    assert fresh["documents"] == 8 and fresh["budget"] == {"127.0.0.1": 6}
    assert fresh["budget_used"]["127.0.0.1"] <= 6 and fresh["rechecked"] + fresh["early"] == 4
    assert big["oldest_check_at"] is not None
    assert "within their interval" in page and "127.0.0.1 6/6 requests" in page


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("    recheck: {min_interval_s: 7200, max_interval_s: 3600}", "sources[0].recheck.min_interval_s"),
        ("    recheck: {colour: 1}", "sources[0].recheck.colour"),
        ("    recheck: {budget: 0}", "sources[0].recheck.budget"),
        ("    recheck: {budget_fraction: 2}", "sources[0].recheck.budget_fraction"),
        ("    recheck: {early: maybe}", "sources[0].recheck.early"),
        ('    schedule: "@fortnightly"', "sources[0].schedule"),
        ('    schedule: "61 * * * *"', "sources[0].schedule"),
        ('    document_hosts: ["http://www.gov.cn/"]', "sources[0].document_hosts[0]"),
    ],
)
def test_recheck_settings_are_validated_at_load_naming_the_key(extra: str, key: str) -> None:
    from policywatch.config import ConfigError

    text = f"""
sources:
  - id: s
    name: s
    listing_urls: ["https://www.gov.cn/zhengce/zuixin/"]
    link_pattern: "/content/"
{extra}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.key == key, str(caught.value)
    assert caught.value.line is not None


def test_settings_recheck_is_every_sources_default_and_a_source_overrides_it_key_by_key() -> None:
    config = parse_config(
        """
sources:
  - id: a
    name: a
    pages: ["https://www.gov.cn/a.html"]
    schedule: "@daily"
  - id: b
    name: b
    pages: ["https://www.gov.cn/b.html"]
    recheck: {max_interval_s: 172800}
settings:
  recheck: {max_interval_s: 1209600, request_cost_s: 60}
"""
    )
    a, b = (s.recheck_policy for s in config.sources)
    assert (a.min_interval_s, a.max_interval_s, a.request_cost_s) == (86400, 1209600, 60)
    assert (b.min_interval_s, b.max_interval_s, b.request_cost_s) == (3600, 172800, 60)
