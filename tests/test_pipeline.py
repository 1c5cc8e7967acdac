"""End to end through the pipeline: a real local site, a real database (SQLite and PostgreSQL).

Each non-change named in CONTRACT.md and each kind of change has its own test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

import policywatch.extraction.document
from policywatch.classify import diff_versions
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page, news_repost_page, provincial_page
from policywatch.extraction import normalise_text
from policywatch.pipeline import CycleSummary
from policywatch.policydiff import DocumentDiff
from storage.models import ChangeEvent, Document, DocumentVersion, FetchAttempt
from tests.support import world as harness
from tests.support.site import LocalSite

TITLE = "江西省人民政府关于印发江西省“十四五”数字经济发展规划的通知"
DOC_NUMBER = "赣府发〔2022〕11号"


class World(harness.World):
    """One source, `demo`, listed at /list/ (a listing whose links carry a #fragment)."""

    events = harness.World.change_events

    def config_text(self) -> str:
        return harness.sources_yaml(
            harness.source_entry(self.site, "demo", "演示站"),
            settings={"backoff_base_s": 0.01, "max_attempts": 2, "read_timeout_s": 5},
        )

    def listing(self, *paths: str) -> None:
        """List `paths` (each with #top), then a link to /about/ that is no document."""
        self.put_listing_page(harness.numbered(f"{p}#top" for p in paths), tail="<a href='/about/'>关于</a>")

    def version_count(self) -> int:
        return self.count(DocumentVersion)

    def diff_of(self, event: ChangeEvent) -> DocumentDiff:
        """The diff between the event's two versions."""
        with self.sessions() as s:
            old = s.get(DocumentVersion, event.old_version_id)
            new = s.get(DocumentVersion, event.new_version_id)
            return diff_versions(old, new)


@pytest.fixture
def world(site: LocalSite, db_url: str) -> Iterator[World]:
    with World(site, db_url) as w:
        yield w


PARAS = corpus_paragraphs("004")[1:41]  # line 0 is the title itself


def serve_doc(world: World, path: str = "/content/1.html", **kwargs) -> None:  # type: ignore[no-untyped-def]
    kwargs.setdefault("title", TITLE)
    kwargs.setdefault("paragraphs", PARAS)
    kwargs.setdefault("doc_number", DOC_NUMBER)
    kwargs.setdefault("issuer", "江西省人民政府")
    kwargs.setdefault("pub_date", "2022-05-25")
    world.site.put(path, gov_cn_page(**kwargs))


def baseline(world: World, **kwargs) -> CycleSummary:  # type: ignore[no-untyped-def]
    world.listing("/content/1.html")
    serve_doc(world, **kwargs)
    first = world.cycle()
    assert first.baseline == 1 and first.errors == 0, first.failures
    assert world.events() == []
    return first


def assert_no_change(world: World) -> None:
    second = world.cycle()
    assert (second.new, second.changed, second.removed, second.errors) == (0, 0, 0, 0), second.failures
    assert second.unchanged == 1
    assert world.events() == []
    assert world.version_count() == 1


# --- what is not a change ---------------------------------------------------------------------------


def test_gbk_without_charset_header_is_not_a_change(world: World) -> None:
    baseline(world)
    page = gov_cn_page(TITLE, PARAS, doc_number=DOC_NUMBER, issuer="江西省人民政府", pub_date="2022-05-25")
    undeclared = page.replace('<meta charset="utf-8">', "")
    assert "charset" not in undeclared
    world.site.put("/content/1.html", undeclared.encode("gbk"), content_type="text/html")
    assert_no_change(world)


def test_full_width_punctuation_is_not_a_change(world: World) -> None:
    baseline(world)
    full_width = [
        p.replace(",", "，").replace(":", "：").replace("(", "（").replace(")", "）") for p in PARAS
    ]
    assert full_width != PARAS
    serve_doc(world, paragraphs=full_width)
    assert_no_change(world)


def test_visit_counter_is_not_a_change(world: World) -> None:
    baseline(world, counter=100)
    serve_doc(world, counter=100_001)
    assert_no_change(world)


def test_reordered_sidebar_is_not_a_change(world: World) -> None:
    baseline(world, sidebar=("数据要素市场化配置", "关于加快建设全国统一大市场", "数字政府建设指导意见"))
    serve_doc(world, sidebar=("数字政府建设指导意见", "数据要素市场化配置", "新的相关文章"))
    assert_no_change(world)


def test_injected_keyword_links_are_not_a_change(world: World) -> None:
    world.listing("/content/1.html")
    paras = corpus_paragraphs("003")
    world.site.put("/content/1.html", news_repost_page("国务院印发数字经济发展规划", paras, keyword_links=()))
    assert world.cycle().baseline == 1
    world.site.put(
        "/content/1.html",
        news_repost_page("国务院印发数字经济发展规划", paras, keyword_links=("重组", "数字经济")),
    )
    assert "infokey" in world.site.pages["/content/1.html"].body.decode()
    assert_no_change(world)


def test_page_chrome_is_not_a_change(world: World) -> None:
    """Navigation, breadcrumb, font-size and print buttons, share widget, editor line, footer, scripts."""
    baseline(world)
    page = gov_cn_page(TITLE, PARAS, doc_number=DOC_NUMBER, issuer="江西省人民政府", pub_date="2022-05-25")
    edits = [
        (
            '<li><a href="/fuwu/">服务</a></li>',
            '<li><a href="/fuwu/">服务</a></li><li><a href="/shuju/">数据</a></li>',
        ),
        ('&gt; <a href="/zhengce/xxgk/">国务院文件</a>', '&gt; <a href="/zhengce/xxgk/">政策文件库</a>'),
        ('<a href="javascript:void(0)">小</a>', '<a href="javascript:void(0)">小</a> <a href="#">特大</a>'),
        ("【打印本页】", "【打印】【下载PDF】"),
        ("<span>分享到：</span>", '<span>分享到：</span><a class="bds_qzone">QQ空间</a>'),
        ("责任编辑：王洋", "责任编辑：李明"),
        ("京ICP备05070218号", "京ICP备05070218号-3　网站地图"),
        ("hm.js?x", "hm.js?y2026"),
        ('innerHTML = "', 'innerHTML = "共'),
    ]
    for old, new in edits:
        assert old in page, old
        page = page.replace(old, new)
    world.site.put("/content/1.html", page)
    assert_no_change(world)


def test_whitespace_and_line_wrapping_are_not_a_change(world: World) -> None:
    baseline(world)
    # Wrapped after every comma and full stop, the way CMS editors break long lines in the HTML source.
    wrapped = ["\u3000\u3000" + p.replace(",", ",\n    ").replace("。", "。\r\n ") + " " for p in PARAS]
    serve_doc(world, paragraphs=wrapped)
    assert_no_change(world)


def test_gbk_provincial_page_is_versioned_once(world: World) -> None:
    world.listing("/content/1.html")
    page = provincial_page(TITLE, PARAS, doc_number=DOC_NUMBER, pub_date="2022-05-25")
    world.site.put("/content/1.html", page.encode("gbk"), content_type="text/html; charset=gb2312")
    assert world.cycle().baseline == 1
    world.site.put("/content/1.html", page.encode("gbk"), content_type="text/html")
    assert_no_change(world)
    with world.sessions() as s:
        version = s.scalars(select(DocumentVersion)).one()
        assert version.text.split("\n")[:3] == PARAS[:3]


# --- what is a change -------------------------------------------------------------------------------


def test_one_character_change_in_the_largest_document(world: World) -> None:
    paras = corpus_paragraphs("004")
    world.listing("/content/1.html")
    serve_doc(world, paragraphs=paras)
    world.cycle()
    # Change one figure in the middle of the document: "8354亿元" -> "8355亿元".
    index = next(i for i, p in enumerate(paras) if "8354" in p)
    edited = list(paras)
    edited[index] = paras[index].replace("8354", "8355", 1)
    serve_doc(world, paragraphs=edited)
    summary = world.cycle()
    assert (summary.changed, summary.new, summary.removed) == (1, 0, 0)
    [event] = world.events()
    assert event.kind == "changed" and event.old_version_id and event.new_version_id
    assert 0 < event.significance <= 1
    diff = world.diff_of(event)
    [change] = diff.changes
    assert change.op == "replace"
    marked = [
        (change.old[s.old_start : s.old_end], change.new[s.new_start : s.new_end]) for s in change.spans
    ]
    assert marked == [("8354", "8355")]


def test_paragraph_added(world: World) -> None:
    baseline(world)
    added = "(十一)加快建设全省一体化算力网络,统筹布局数据中心集群。"
    serve_doc(world, paragraphs=[*PARAS[:10], added, *PARAS[10:]])
    assert world.cycle().changed == 1
    [event] = world.events()
    [change] = world.diff_of(event).changes
    assert change.op == "insert" and change.new == added


def test_paragraph_removed(world: World) -> None:
    baseline(world)
    removed = PARAS[12]
    serve_doc(world, paragraphs=PARAS[:12] + PARAS[13:])
    assert world.cycle().changed == 1
    [event] = world.events()
    changes = world.diff_of(event).changes
    assert [c.op for c in changes] == ["delete"] * len(changes)
    assert "".join(c.old for c in changes) == normalise_text(removed)


def test_title_change(world: World) -> None:
    baseline(world)
    serve_doc(world, title=TITLE.replace("通知", "补充通知"))
    assert world.cycle().changed == 1
    [event] = world.events()
    assert event.title.endswith("补充通知")
    [change] = world.diff_of(event).changes
    assert change.op == "replace" and [change.new[s.new_start : s.new_end] for s in change.spans] == ["补充"]


def test_new_document_on_the_listing(world: World) -> None:
    baseline(world)
    serve_doc(
        world,
        path="/content/2.html",
        title="国家数据局关于开展公共数据资源开发利用试点的通知",
        paragraphs=corpus_paragraphs("000")[:20],
        doc_number="国数发〔2024〕3号",
    )
    world.listing("/content/1.html", "/content/2.html?utm_source=feed")
    summary = world.cycle()
    assert (summary.new, summary.changed, summary.unchanged) == (1, 0, 1)
    [event] = world.events()
    assert event.kind == "new" and event.relevant is True and event.significance == 1.0
    assert event.url == world.site.url("/content/2.html")  # canonical: no utm_*, no fragment


def test_removed_then_restored(world: World) -> None:
    baseline(world)
    world.site.remove("/content/1.html")  # answers 404
    summary = world.cycle()
    assert summary.removed == 1 and summary.errors == 0
    assert [e.kind for e in world.events()] == ["removed"]
    assert world.cycle().removed == 0  # still gone: no second event
    serve_doc(world)
    assert world.cycle().restored == 1
    assert [e.kind for e in world.events()] == ["removed", "restored"]
    assert world.version_count() == 1


def test_server_error_is_a_fetch_error(world: World) -> None:
    baseline(world)
    world.site.put("/content/1.html", "<h1>Service Unavailable</h1>", status=503)
    summary = world.cycle()
    assert summary.errors == 1 and (summary.changed, summary.removed, summary.new) == (0, 0, 0)
    assert world.events() == [] and world.version_count() == 1
    with world.sessions() as s:
        attempt = s.scalars(select(FetchAttempt).order_by(FetchAttempt.id.desc())).first()
        assert attempt.outcome == "error" and attempt.status == 503


def test_challenge_page_is_a_fetch_error(world: World) -> None:
    baseline(world)
    challenge = (
        "<html><head><meta charset=utf-8><script>var $_ts=window['$_ts'];if(!$_ts)$_ts={};"
        "$_ts.nsd=12345;$_ts.cd='qEhrrpAlEq';</script><script src='/abc.js' r='m'></script></head>"
        "<body></body></html>"
    )
    world.site.put("/content/1.html", challenge, status=412)
    summary = world.cycle()
    assert summary.errors == 1 and world.events() == [] and world.version_count() == 1
    assert "challenge" in summary.failures[0]["error"]


def test_not_modified_costs_no_parsing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.listing("/content/1.html")
    serve_doc(world)
    world.site.pages["/content/1.html"].etag = '"v1"'
    world.cycle()
    calls: list[str] = []
    real_extract = policywatch.extraction.document.extract_document
    monkeypatch.setattr(
        policywatch.extraction.document,
        "extract_document",
        lambda *a, **k: calls.append(a[1]) or real_extract(*a, **k),
    )
    summary = world.cycle()
    assert summary.not_modified == 1 and summary.fetched == 0 and calls == []
    assert world.site.requests[-1].headers.get("if-none-match") == '"v1"'
    assert world.events() == [] and world.version_count() == 1


def test_baseline_records_documents_silently(world: World) -> None:
    world.listing("/content/1.html", "/content/2.html")
    serve_doc(world)
    serve_doc(world, path="/content/2.html", title="另一份通知", paragraphs=PARAS[5:9])
    summary = world.cycle()
    assert summary.baseline == 2 and summary.new == 0
    with world.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 2
    assert world.events() == []


def test_changes_json_shape(world: World, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from policywatch.cli import main

    baseline(world)
    serve_doc(world, paragraphs=[p.replace("8354", "9000") for p in PARAS])
    world.cycle()
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", world.url)
    assert main(["changes", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert set(row) >= {
        "id",
        "kind",
        "source",
        "url",
        "document_id",
        "title",
        "old_version_id",
        "new_version_id",
        "detected_at",
        "relevant",
        "significance",
        "summary",
    }
    assert row["kind"] == "changed" and row["source"] == "demo" and "8354 → 9000" in row["summary"]
    assert main(["diff", str(row["old_version_id"]), str(row["new_version_id"]), "--format", "json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert set(diff) >= {"old_version_id", "new_version_id", "significance", "changes"}
    assert diff["changes"][0]["op"] == "replace"
    assert main(["history", str(row["document_id"]), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [v["id"] for v in history["versions"]] == [row["old_version_id"], row["new_version_id"]]
    assert set(history["versions"][0]) >= {
        "id",
        "first_seen_at",
        "last_seen_at",
        "content_hash",
        "title",
        "doc_number",
        "published_at",
        "chars",
    }
    assert history["versions"][0]["doc_number"] == DOC_NUMBER
    assert main(["search", "数字经济增加值", "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["document_id"] == row["document_id"] and "数字经济增加值" in hit["snippet"]


def _check_times(world: World) -> list[str]:
    from storage.queries import iso

    with world.sessions() as s:
        query = select(FetchAttempt.fetched_at).where(FetchAttempt.document_id.is_not(None))
        return [iso(t) for t in s.scalars(query.order_by(FetchAttempt.id))]


def _history(world: World) -> list[dict]:  # type: ignore[type-arg]
    from storage.queries import document_history

    with world.sessions() as s:
        history = document_history(s, "1")
        assert history is not None
        return history["versions"]


def test_last_seen_follows_every_check_without_rewriting_the_version_row(world: World) -> None:
    """An unchanged check moves the version's last sighting (history shows it) through the document
    row: the version row, with its whole text, is written when the version is recorded and when it
    is superseded, never by a check that finds it again."""
    world.listing("/content/1.html")
    serve_doc(world, counter=1)
    world.cycle()
    serve_doc(world, counter=2)  # chrome only
    assert world.cycle().unchanged == 1
    world.site.pages["/content/1.html"].etag = '"v1"'
    world.cycle()  # stores the ETag
    assert world.cycle().not_modified == 1
    checks = _check_times(world)
    [version] = _history(world)
    assert version["last_seen_at"] == checks[-1] > version["first_seen_at"]
    with world.sessions() as s:
        row = s.scalar(select(DocumentVersion))
        assert row is not None and row.last_seen_at == row.first_seen_at  # never rewritten
    serve_doc(world, paragraphs=[*PARAS[:5], "新增一条：数据要素市场化配置改革。", *PARAS[5:]])
    assert world.cycle().changed == 1
    old, new = _history(world)
    checks = _check_times(world)
    assert old["last_seen_at"] == checks[-2]  # its last sighting, kept for good
    assert new["first_seen_at"] == new["last_seen_at"] == checks[-1]


def test_a_bug_on_one_page_loses_that_page_only(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages are written in batches (one transaction for many): a page whose processing raises rolls
    its batch back, and the batch's other pages are redone one by one, each counted once."""
    from storage import store

    paths = [f"/content/{i}.html" for i in range(1, 7)]
    world.listing(*paths)
    for i, path in enumerate(paths):
        serve_doc(world, path=path, title=f"{TITLE}（第{i}号）", paragraphs=PARAS[i : i + 20])
    real = store.record_content

    def buggy(session, source_id, document_id, fetch, *args, **kwargs):  # type: ignore[no-untyped-def]
        if fetch.url.endswith("/content/4.html"):
            raise RuntimeError("a bug")
        return real(session, source_id, document_id, fetch, *args, **kwargs)

    monkeypatch.setattr(store, "record_content", buggy)
    summary = world.cycle()
    assert summary.baseline == 5 and summary.errors == 1 and summary.succeeded == 5
    assert "processing failed: RuntimeError: a bug" in summary.failures[0]["error"]
    assert world.version_count() == 5
    with world.sessions() as s:
        attempts = s.execute(select(FetchAttempt.url, FetchAttempt.outcome, FetchAttempt.error_kind)).all()
    assert sorted(a.outcome for a in attempts if "/content/" in a.url) == ["baseline"] * 5 + ["error"]
    assert [a.error_kind for a in attempts if a.outcome == "error"] == ["internal"]


def test_a_large_source_without_delay_is_read_by_worker_processes(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Past MIN_TARGETS_FOR_PROCESSES pages, a source with min_delay_s 0 is observed by a process per
    core (settings.processes): the same outcome as in one process, the parsing done elsewhere."""
    import os
    from dataclasses import replace

    from policywatch.extraction import equivalence
    from policywatch.observe import MIN_TARGETS_FOR_PROCESSES

    count = MIN_TARGETS_FOR_PROCESSES + 6
    paths = [f"/content/{i}.html" for i in range(count)]
    world.listing(*paths)
    for i, path in enumerate(paths):
        serve_doc(
            world, path=path, title=f"{TITLE}（第{i}号）", paragraphs=PARAS[i % 20 : i % 20 + 8], counter=1
        )
    world.config = replace(world.config, settings=replace(world.config.settings, processes=2))
    pids = tmp_path / "pids"
    real = equivalence.page_fingerprint

    def recording(html: str):  # type: ignore[no-untyped-def]
        with pids.open("a") as out:  # a file: the workers are other processes
            out.write(f"{os.getpid()}\n")
        return real(html)

    monkeypatch.setattr("policywatch.observe.page_fingerprint", recording)  # inherited by fork
    assert world.cycle().baseline == count
    for i in (3, 40, count - 1):  # three change in substance, every page's counter moves
        serve_doc(world, path=paths[i], title=f"{TITLE}（第{i}号）", paragraphs=PARAS[30:38], counter=2)
    for i in set(range(count)) - {3, 40, count - 1}:
        serve_doc(
            world,
            path=paths[i],
            title=f"{TITLE}（第{i}号）",
            paragraphs=PARAS[i % 20 : i % 20 + 8],
            counter=2,
        )
    summary = world.cycle()
    assert (summary.changed, summary.unchanged, summary.errors) == (3, count - 3, 0)
    assert len(world.events("changed")) == 3 and world.version_count() == count + 3
    workers = set(pids.read_text().split()) - {str(os.getpid())}
    assert len(workers) >= 2, workers


def test_fetchers_in_n_processes_keep_one_process_pace(site: LocalSite) -> None:
    """delay_scale: each of N processes waits N times min_delay_s between requests to a host."""
    from crawlers import Fetcher

    site.put("/a.html", gov_cn_page(TITLE, PARAS[:5]))
    with Fetcher(delay_scale=3) as fetcher:
        started = time.monotonic()
        for _ in range(3):
            fetcher.fetch_page(site.url("/a.html"), min_delay_s=0.1, allow_private=True)
    times = [r.at for r in site.requests if r.path == "/a.html"]
    # Request i has the slot 0.3·i s after the first: it may reach the server late (a loaded
    # machine), never early. (Gaps between arrivals would shrink after a late one: not politeness.)
    assert len(times) == 3
    assert all(at - started >= 0.3 * i - 0.01 for i, at in enumerate(times)), [t - started for t in times]


def test_a_bug_while_reading_one_page_loses_that_page_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The observe stage (fetch, fingerprint, extract) runs apart from the version stage: a page that
    makes extraction raise is an internal error of that page, and the cycle goes on."""
    paths = [f"/content/{i}.html" for i in range(1, 5)]
    world.listing(*paths)
    for i, path in enumerate(paths):  # four different texts (overlapping ones would be reposts)
        serve_doc(world, path=path, title=f"{TITLE}（第{i}号）", paragraphs=PARAS[i * 10 : i * 10 + 10])
    real = policywatch.extraction.document.extract_document

    def buggy(html: str, url: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if url.endswith("/content/2.html"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(html, url, *args, **kwargs)

    monkeypatch.setattr(policywatch.extraction.document, "extract_document", buggy)
    summary = world.cycle()
    assert summary.baseline == 3 and summary.errors == 1 and world.version_count() == 3
    assert summary.failures[0]["url"].endswith("/content/2.html")
    assert (
        summary.failures[0]["error"] == "processing failed: RecursionError: maximum recursion depth exceeded"
    )
    monkeypatch.setattr(policywatch.extraction.document, "extract_document", real)
    again = world.cycle()  # once the page can be read, it is recorded (the baseline is over: new)
    assert (again.new, again.unchanged, again.errors) == (1, 3, 0)


def test_a_slow_page_does_not_keep_the_others_uncommitted(world: World) -> None:
    """The version stage commits what it holds when the observe stage keeps it waiting: pages already
    read are visible (and, on SQLite, the write lock is free) while a slow page is still loading."""
    import sqlite3
    import threading

    from tests.support.site import Page, RequestInfo

    world.listing("/content/1.html", "/content/2.html")
    serve_doc(world, path="/content/1.html", title=f"{TITLE}（一）", paragraphs=PARAS[:10])
    serve_doc(world, path="/content/2.html", title=f"{TITLE}（二）", paragraphs=PARAS[10:20])
    slow = world.site.pages["/content/2.html"]
    assert isinstance(slow, Page)
    asked, release = threading.Event(), threading.Event()

    def held(_: RequestInfo) -> Page:
        asked.set()
        release.wait(30)
        return slow

    world.site.pages["/content/2.html"] = held
    results: list[CycleSummary] = []
    cycle = threading.Thread(target=lambda: results.append(world.cycle()))
    cycle.start()
    try:
        assert asked.wait(30)
        deadline = time.monotonic() + 10
        while world.version_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.version_count() == 1  # page 1 is committed while page 2 is loading
        if world.engine.dialect.name == "sqlite":
            other = sqlite3.connect(world.engine.url.database, timeout=2)
            other.execute("BEGIN IMMEDIATE")  # the write lock is free
            other.execute("ROLLBACK")
            other.close()
    finally:
        release.set()
        cycle.join(60)
    assert results and results[0].baseline == 2 and world.version_count() == 2
