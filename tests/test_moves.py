"""A moved document without a 发文字号 keeps its id and history: the redirect is the evidence.

CONTRACT.md: "Moved: a document whose old URL now redirects to a new one (or that reappears at a
new URL with the same document number and title) keeps its `document_id` and history; a move is
not an event", and "A deep page that now redirects to the site's home page is a removal, not a
move". Every test here runs a real local site and a real store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from policywatch import identity
from policywatch.cli import main
from policywatch.demosite.pages import corpus_document, plain_page
from policywatch.identity import is_home_page, pair_verdict, redirected_home
from policywatch.observe import make_fetcher
from policywatch.pipeline import (
    CycleSummary,
    SourcePlan,
    plan_source,
    process_targets,
    run_cycle,
)
from policywatch.tasks import batches
from storage.models import Document, DocumentVersion, FetchAttempt
from storage.queries import document_history
from tests.support import world as harness
from tests.support.site import LocalSite

# Three documents of no 发文字号: plain titles and body text (identity by number cannot help).
DOCS = {name: corpus_document(name) for name in ("000", "001", "003")}
OLD = {"000": "/content/a.html", "001": "/content/b.html", "003": "/content/c.html"}
MOVED = "001"  # the document the site moves
NEW_URL = "/content/2024/b-new.html"


@dataclass
class World(harness.World):
    """One source, `city`, listed at /list/ with titles; `concurrency` fetches at once, `delay`
    between requests to the host. Its cycles must have no fetch error."""

    concurrency: int = field(default=4, kw_only=True)
    delay: float = field(default=0.0, kw_only=True)

    clean_cycles = True
    events = harness.World.event_pairs

    def config_text(self) -> str:
        return harness.sources_yaml(
            harness.source_entry(
                self.site, "city", "市政府", min_delay_s=self.delay, concurrency=self.concurrency
            ),
            settings={"backoff_base_s": 0.01, "max_attempts": 1, "respect_robots": False},
        )

    def listing(self, *entries: tuple[str, str]) -> None:
        """List each (path, title)."""
        self.put_listing_page(entries)

    def page(self, path: str, name: str, edit: bool = False) -> None:
        """Serve the corpus document `name` at `path` (`edit`: with one figure changed)."""
        title, paras = DOCS[name]
        if edit:  # one figure of one paragraph
            paras = [*paras[:-1], paras[-1] + "到2025年，新增数据中心机架50万个。"]
        self.site.put(path, plain_page(title, paras))

    def redirect(self, path: str, to: str, status: int = 301, delay_s: float = 0.0) -> None:
        """Make `path` redirect to `to`, after `delay_s`."""
        self.site.put(path, b"", status=status, headers={"Location": to}, content_type=None, delay_s=delay_s)

    def history(self, path: str) -> dict[str, Any]:
        """`document_history` of the document at `path` (found by any URL it had)."""
        with self.sessions() as s:
            found = document_history(s, self.site.url(path))
        assert found is not None, path
        return found

    def document_id(self, path: str) -> int:
        return int(self.history(path)["document_id"])


@pytest.fixture
def world(site: LocalSite, db_url: str) -> Iterator[World]:
    with World(site, db_url) as w:
        yield w


def listed(name: str, path: str | None = None, title: str | None = None) -> tuple[str, str]:
    return (path or OLD[name], title if title is not None else DOCS[name][0])


def baseline(world: World, titles: bool = True) -> dict[str, int]:
    """Three documents listed and served; the silent first cycle. Returns their ids."""
    for name, path in OLD.items():
        world.page(path, name)
    world.listing(*(listed(n, title=None if titles else "详情") for n in OLD))
    assert world.cycle().baseline == 3
    return {name: world.document_id(path) for name, path in OLD.items()}


def move(world: World, edit: bool = False, titles: bool = True, slow_old: float = 0.0) -> None:
    """The site moves document MOVED: the listing links NEW_URL, the old URL answers 301 to it."""
    world.page(NEW_URL, MOVED, edit=edit)
    world.redirect(OLD[MOVED], NEW_URL, delay_s=slow_old)
    entries = [
        listed(n, NEW_URL if n == MOVED else None, None if titles else "详情") for n in ("001", "000", "003")
    ]
    world.listing(*entries)


def assert_moved(world: World, ids: dict[str, int], summary: CycleSummary, edit: bool) -> None:
    assert (summary.new, summary.republished, summary.removed, summary.restored) == (0, 0, 0, 0)
    assert summary.changed == (1 if edit else 0)
    assert world.events() == ([("changed", ids[MOVED])] if edit else [])
    assert world.count(Document) == 3
    assert world.count(DocumentVersion) == 3 + (1 if edit else 0)
    at_new, at_old = world.history(NEW_URL), world.history(OLD[MOVED])
    assert at_new == at_old
    assert at_new["document_id"] == ids[MOVED]
    assert at_new["url"] == world.site.url(NEW_URL)
    assert at_new["republished_of"] is None and at_new["status"] == "active"
    assert len(at_new["versions"]) == (2 if edit else 1)


# --- the issue: a listing that links the new URL, an old URL that answers 301 ----------------------


@pytest.mark.parametrize("edit", [False, True], ids=["same-page", "edited"])
@pytest.mark.parametrize("titles", [True, False], ids=["listing-titles", "link-texts"])
def test_a_redirected_document_without_a_number_keeps_its_history(
    world: World, edit: bool, titles: bool
) -> None:
    ids = baseline(world, titles=titles)
    move(world, edit=edit, titles=titles)
    summary = world.cycle()
    assert_moved(world, ids, summary, edit)
    # The next cycle: the document is simply seen again at its new address.
    again = world.cycle()
    assert (again.new, again.changed, again.removed, again.republished) == (0, 0, 0, 0)
    assert again.unchanged + again.not_modified == 3
    assert world.events() == ([("changed", ids[MOVED])] if edit else [])


def test_the_cli_history_finds_the_moved_document_by_either_url(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = baseline(world)
    move(world, edit=True)
    world.cycle()
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", world.url)
    seen = []
    for path in (OLD[MOVED], NEW_URL):
        assert main(["history", world.site.url(path), "--json"]) == 0
        seen.append(json.loads(capsys.readouterr().out))
    assert seen[0] == seen[1]
    assert seen[0]["document_id"] == ids[MOVED] and len(seen[0]["versions"]) == 2


@pytest.mark.parametrize("delay", [0.0, 0.05], ids=["no-delay", "politeness"])
@pytest.mark.parametrize("edit", [False, True], ids=["same-page", "edited"])
def test_the_new_url_answering_first_changes_nothing(
    site: LocalSite, db_url: str, edit: bool, delay: float
) -> None:
    """The new URL is fetched and answers before the old one is re-checked (the old URL's 301 is
    slow, several fetches run at once): the outcome does not depend on that order."""
    world = World(site, db_url, concurrency=4, delay=delay)
    try:
        ids = baseline(world)
        move(world, edit=edit, slow_old=0.6)
        summary = world.cycle()
        # The new URL answered before the old URL's redirect did.
        new_at = next(r.at for r in site.requests if r.path == NEW_URL)
        old_answered = max(r.at for r in site.requests if r.path == OLD[MOVED]) + 0.6
        assert new_at < old_answered
        assert_moved(world, ids, summary, edit)
    finally:
        world.engine.dispose()


def test_a_redirect_the_listing_does_not_show_moves_the_document(world: World) -> None:
    """The listing drops the document and does not show its new URL: only the redirect tells."""
    ids = baseline(world)
    world.page(NEW_URL, MOVED, edit=True)
    world.redirect(OLD[MOVED], NEW_URL)
    world.listing(listed("000"), listed("003"))
    summary = world.cycle()
    assert_moved(world, ids, summary, edit=True)


def test_a_listing_that_moves_back_and_forth_keeps_one_document(world: World) -> None:
    """Moved, then moved again (the new URL 301s to a third one): still one document."""
    ids = baseline(world)
    move(world)
    world.cycle()
    third = "/content/2025/b.html"
    world.page(third, MOVED)
    world.redirect(NEW_URL, third)
    world.listing(listed("000"), listed(MOVED, third), listed("003"))
    summary = world.cycle()
    assert (summary.new, summary.republished, summary.removed) == (0, 0, 0)
    assert world.events() == []
    assert world.document_id(third) == world.document_id(OLD[MOVED]) == ids[MOVED]
    assert world.count(Document) == 3


# --- what a move is not -----------------------------------------------------------------------------


def test_a_genuinely_new_document_costs_one_request(world: World) -> None:
    """A new document (not a move) is fetched once; no old URL is re-checked for it."""
    baseline(world)
    title, paras = corpus_document("004")
    world.site.put("/content/d.html", plain_page(title, paras))
    world.listing(*(listed(n) for n in OLD), ("/content/d.html", title))
    site = world.site
    site.hits.clear()
    summary = world.cycle()
    assert summary.new == 1 and world.events()[0][0] == "new"
    assert site.hits["/content/d.html"] == 1
    assert all(site.hits[path] == 1 for path in OLD.values())


def test_the_same_text_at_another_address_while_the_old_one_still_answers_is_a_repost(world: World) -> None:
    """The old URL still serves the document (no redirect): the copy at a new URL is no move."""
    ids = baseline(world)
    world.page(NEW_URL, MOVED)
    world.listing(*(listed(n) for n in ("000", "003")), listed(MOVED, NEW_URL))
    summary = world.cycle()
    assert summary.republished == 1 and summary.removed == 0
    assert world.document_id(OLD[MOVED]) == ids[MOVED]
    copy = world.history(NEW_URL)
    assert copy["document_id"] != ids[MOVED] and copy["republished_of"] == ids[MOVED]


@pytest.mark.parametrize("home", ["/", "/index.html"])
@pytest.mark.parametrize("still_listed", [True, False], ids=["still-listed", "unlisted"])
def test_a_redirect_to_the_home_page_is_a_removal(world: World, home: str, still_listed: bool) -> None:
    ids = baseline(world)
    world.site.put(home, plain_page("某某市人民政府门户网站", ["欢迎访问某某市人民政府门户网站。" * 8]))
    world.redirect(OLD[MOVED], home, status=302)
    world.listing(*(listed(n) for n in OLD if still_listed or n != MOVED))
    summary = world.cycle()
    assert (summary.removed, summary.new, summary.changed, summary.republished) == (1, 0, 0, 0)
    assert world.events() == [("removed", ids[MOVED])]
    gone = world.history(OLD[MOVED])
    assert gone["document_id"] == ids[MOVED] and gone["status"] == "removed"
    assert gone["url"] == world.site.url(OLD[MOVED])  # not moved to the home page
    assert len(gone["versions"]) == 1 and world.count(Document) == 3
    with world.sessions() as s:
        assert document_history(s, world.site.url(home)) is None
    # Still redirected the next cycle: nothing more. Back at its address: restored.
    world.cycle()
    assert [kind for kind, _ in world.events()] == ["removed"]
    world.page(OLD[MOVED], MOVED)
    world.listing(*(listed(n) for n in OLD))
    assert world.cycle().restored == 1
    assert [kind for kind, _ in world.events()] == ["removed", "restored"]


def test_a_redirected_new_link_to_the_home_page_is_no_document(world: World) -> None:
    """A newly listed link that redirects to the home page: a stale listing, not a document."""
    baseline(world)
    world.site.put("/", plain_page("某某市人民政府门户网站", ["欢迎访问某某市人民政府门户网站。" * 8]))
    world.redirect("/content/gone.html", "/")
    world.listing(*(listed(n) for n in OLD), ("/content/gone.html", "一份撤下的文件"))
    summary = run_cycle(world.config, world.engine)
    assert summary.new == 0 and world.count(Document) == 3
    assert [f["url"] for f in summary.failures] == [world.site.url("/content/gone.html")]


# --- uncertain answers: decide nothing rather than the wrong thing --------------------------------------


def test_an_old_url_that_fails_defers_the_new_url(world: World) -> None:
    """The old URL answers 503 this cycle: whether the listing's new URL is the same document is
    unknown, so the new URL waits a cycle (no `new`, no `republished`), then the move is found."""
    ids = baseline(world)
    move(world)
    world.site.put(OLD[MOVED], b"busy", status=503)
    summary = run_cycle(world.config, world.engine)
    assert (summary.new, summary.republished, summary.removed) == (0, 0, 0)
    assert world.count(Document) == 3 and world.events() == []
    assert {f["url"] for f in summary.failures} >= {world.site.url(OLD[MOVED])}
    world.redirect(OLD[MOVED], NEW_URL)
    summary = world.cycle()
    assert_moved(world, ids, summary, edit=False)


def test_an_old_url_gone_and_a_new_url_of_no_number_is_not_merged(world: World) -> None:
    """404 at the old address and the same title and text at a new one, without a 发文字号 nor a
    redirect: the contract's evidence of a move is missing, so the old document is removed and the
    new page is a repost of it (the repost link keeps them together)."""
    ids = baseline(world)
    world.page(NEW_URL, MOVED)
    world.site.remove(OLD[MOVED])
    world.listing(listed("000"), listed(MOVED, NEW_URL), listed("003"))
    summary = world.cycle()
    assert (summary.removed, summary.republished, summary.new) == (1, 1, 0)
    copy = world.history(NEW_URL)
    assert copy["republished_of"] == ids[MOVED]


def test_an_old_url_gone_while_the_new_one_fails_removes_nothing_yet(world: World) -> None:
    """404 at the old address, 503 at the new one: whether the new page is the document is unknown,
    so neither a removal nor a document this cycle; the next cycle decides."""
    ids = baseline(world)
    world.site.remove(OLD[MOVED])
    world.site.put(NEW_URL, b"busy", status=503)
    world.listing(listed("000"), listed(MOVED, NEW_URL), listed("003"))
    summary = run_cycle(world.config, world.engine)
    assert (summary.removed, summary.new, summary.republished) == (0, 0, 0)
    assert world.events() == [] and world.history(OLD[MOVED])["status"] == "active"
    assert [f["url"] for f in summary.failures] == [world.site.url(NEW_URL)]
    world.page(NEW_URL, MOVED)
    world.cycle()
    assert [kind for kind, _ in world.events()] == ["republished", "removed"]
    assert world.history(NEW_URL)["republished_of"] == ids[MOVED]


class _Answer:
    def __init__(self, final_url: str, redirects: list[str] | None = None, error: str | None = None):
        self.final_url, self.redirects, self.error = final_url, redirects or [], error


@pytest.mark.parametrize(
    ("old", "not_found", "new", "verdict"),
    [
        (
            _Answer("http://s/new.html", ["http://s/old.html"]),
            False,
            _Answer("http://s/new.html"),
            identity.MOVED,
        ),
        # the new URL itself redirects on, and the old one ends where it does
        (
            _Answer("http://s/n2.html", ["http://s/old.html", "http://s/new.html"]),
            False,
            _Answer("http://s/n2.html", ["http://s/new.html"]),
            identity.MOVED,
        ),
        # redirected to the new URL, which then timed out: still the evidence of a move
        (
            _Answer("http://s/new.html", ["http://s/old.html"], "timeout"),
            False,
            _Answer("http://s/new.html"),
            identity.MOVED,
        ),
        (_Answer("http://s/", ["http://s/old.html"]), False, _Answer("http://s/new.html"), identity.GONE),
        (_Answer("http://s/old.html"), True, _Answer("http://s/new.html"), identity.GONE),
        (
            _Answer("http://s/new.html", ["http://s/old.html"]),
            True,
            _Answer("http://s/new.html"),
            identity.GONE,
        ),
        (_Answer("http://s/old.html", [], "HTTP 503"), False, _Answer("http://s/new.html"), identity.UNKNOWN),
        (_Answer("http://s/old.html"), False, _Answer("http://s/new.html"), identity.STAYS),
        (
            _Answer("https://s/old.html", ["http://s/old.html"]),
            False,
            _Answer("http://s/new.html"),
            identity.STAYS,
        ),
    ],
)
def test_pair_verdicts(old: _Answer, not_found: bool, new: _Answer, verdict: str) -> None:
    assert pair_verdict("http://s/old.html", old, not_found, "http://s/new.html", new) == verdict


def test_home_pages() -> None:
    for url in (
        "http://s/",
        "http://s",
        "https://www.s.gov.cn/index.html",
        "http://s/INDEX.HTM",
        "http://s/index.shtml",
    ):
        assert is_home_page(url), url
    for url in ("http://s/index.php?id=3", "http://s/zwgk/index.html", "http://s/content/1.html"):
        assert not is_home_page(url), url
    assert redirected_home("http://s/content/1.html", "https://s/", ["http://s/content/1.html"])
    assert not redirected_home("http://s/content/1.html", "http://s/", [])  # no redirect: not this
    assert not redirected_home("http://s/", "https://s/index.html", ["http://s/"])  # home to home


# --- Airflow: the same plan, run as separate batches ----------------------------------------------------


@pytest.mark.parametrize(
    ("size", "reverse"),
    [(200, False), (2, False), (1, False), (1, True)],
    ids=["batches-of-200", "batches-of-2", "split-pair", "split-pair-new-url-first"],
)
def test_the_plan_in_airflow_batches_keeps_each_move_together(world: World, size: int, reverse: bool) -> None:
    """discover → new batches (separate calls, JSON in between, in any order) → due batches. The
    plan puts each pair first, at an even position, so even-sized batches never split one; a batch
    that holds only the new URL of a pair (batches of one) records nothing on a guess."""
    ids = baseline(world)
    move(world, edit=True)
    factory, settings = world.sessions, world.config.settings
    source = world.config.sources[0]
    fetcher = make_fetcher(settings)
    try:
        planned = plan_source(source, world.config, factory, fetcher)
        plan = SourcePlan.from_json(json.loads(json.dumps(planned.to_json())))
        assert [t.document_id for t in plan.new] == [ids[MOVED], ids[MOVED]]
        assert plan.summary.documents_seen == 3
        fresh = batches(plan.new, size)
        total = CycleSummary()
        for batch in reversed(fresh) if reverse else fresh:
            total.add(process_targets(source, factory, fetcher, batch, plan.silent, settings=settings))
        for batch in batches(plan.due, size):
            total.add(process_targets(source, factory, fetcher, batch, plan.silent, settings=settings))
    finally:
        fetcher.close()
    assert total.errors == 0, total.failures
    assert_moved(world, ids, total, edit=True)
    with world.sessions() as s:
        outcomes = s.scalars(select(FetchAttempt.outcome).where(FetchAttempt.document_id == ids[MOVED]))
        assert "error" not in set(outcomes)


def test_moves_read_by_worker_processes(world: World) -> None:
    """A source large enough for the observe stage's worker processes (the halves of a pair come
    back from other processes, in any order): three moves, one of them edited, one slow."""
    from dataclasses import replace

    from policywatch.observe import MIN_TARGETS_FOR_PROCESSES

    world.config = replace(world.config, settings=replace(world.config.settings, processes=2))
    title, paras = DOCS["003"]
    count = MIN_TARGETS_FOR_PROCESSES + 6
    entries = [(f"/content/p{i}.html", f"{title}（之{i}）") for i in range(count)]
    for i, (path, name) in enumerate(entries):
        world.site.put(path, plain_page(name, paras[i % 30 : i % 30 + 12]))
    world.listing(*entries)
    assert world.cycle().baseline == count
    ids = {path: world.document_id(path) for path, _ in entries}
    moved = {5: 0.0, 33: 0.4, count - 1: 0.0}  # index -> seconds the old URL's 301 takes
    for i, slow in moved.items():
        path, name = entries[i]
        body = paras[i % 30 : i % 30 + 12] + (["新增一段：本办法自发布之日起施行。"] if i == 33 else [])
        world.site.put(f"/content/moved/p{i}.html", plain_page(name, body))
        world.redirect(path, f"/content/moved/p{i}.html", delay_s=slow)
        entries[i] = (f"/content/moved/p{i}.html", name)
    world.listing(*entries)
    summary = world.cycle()
    assert (summary.new, summary.republished, summary.removed, summary.changed) == (0, 0, 0, 1)
    assert [kind for kind, _ in world.events()] == ["changed"]
    assert world.count(Document) == count
    for i in moved:
        assert world.document_id(f"/content/moved/p{i}.html") == ids[f"/content/p{i}.html"]
