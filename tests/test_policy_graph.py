"""The policy graph through real cycles: references resolved to documents, implementations by
province, repeals marked 已废止, references resolved later, and subscribers following a document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from policywatch.config import parse_config
from policywatch.demosite.pages import gov_cn_page
from policywatch.demosite.server import DemoServer
from policywatch.demosite.site import demo_config
from policywatch.pipeline import run_cycle
from policywatch.policy_graph import (
    Resolver,
    document_graph,
    follow_key,
    province_of,
    publishes,
)
from policywatch.web.app import create_app
from storage.db import make_engine, session_factory
from storage.models import ChangeEvent, Document, DocumentReference, OutboxMessage, Subscriber
from tests.support.site import LocalSite

NATIONAL = "国发〔2021〕29号"
JIANGXI = "赣府发〔2022〕11号"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoServer]:
    with DemoServer("127.0.0.1", 0, tmp_path / "demo-site.json") as server:
        yield server


def _by_number(session, number: str) -> Document:  # type: ignore[no-untyped-def]
    doc = session.scalar(select(Document).where(Document.doc_number == number))
    assert doc is not None, number
    return doc


def test_provincial_plan_implements_the_national_plan(demo: DemoServer, db_url: str) -> None:
    """The sample corpus: Jiangxi's plan (依据国家《“十四五”数字经济发展规划》…) resolves to the State
    Council's plan, whose page lists it as an implementation, under 江西 on the province map."""
    engine = make_engine(db_url)
    try:
        summary = run_cycle(parse_config(demo_config(demo.base_url)), engine)
        assert summary.errors == 0, summary.failures
        with session_factory(engine)() as session:
            national, jiangxi = _by_number(session, NATIONAL), _by_number(session, JIANGXI)
            refs = session.scalars(
                select(DocumentReference).where(DocumentReference.document_id == jiangxi.id)
            ).all()
            to_national = [r for r in refs if r.target_document_id == national.id]
            assert to_national, [(r.title, r.doc_number, r.kind) for r in refs]
            assert to_national[0].kind == "implements"
            assert "数字经济发展规划" in (to_national[0].title or "")
            # Nothing points at the document itself (its notice publishes its own plan).
            assert all(r.target_document_id != jiangxi.id for r in refs)
            graph = document_graph(session, national.id)
            assert [i["id"] for i in graph["implementations"]] == [jiangxi.id]
            assert graph["implementations"][0]["province"] == "江西"
            jiangxi_cell = next(p for p in graph["provinces"] if p["name"] == "江西")
            assert [d["id"] for d in jiangxi_cell["documents"]] == [jiangxi.id]
            national_id, jiangxi_id, jiangxi_title = national.id, jiangxi.id, jiangxi.title
        client = TestClient(create_app(engine))
        page = client.get(f"/documents/{national_id}").text
        assert "Implementations" in page and jiangxi_title in page
        assert f'href="/documents/{jiangxi_id}"' in page
        assert f"/compare?a={jiangxi_id}&amp;b={national_id}" in page
        cited = client.get(f"/documents/{jiangxi_id}").text
        assert "This document references" in cited and f'href="/documents/{national_id}"' in cited
    finally:
        engine.dispose()


OLD_TITLE = "数据局关于印发《公共数据共享管理办法》的通知"
OLD_NUMBER = "数办发〔2019〕3号"
NEW_TITLE = "数据局关于印发《公共数据资源授权运营管理办法》的通知"
NEW_NUMBER = "数办发〔2024〕8号"


def _gov_site(site: LocalSite, pages: dict[str, tuple[str, list[str], str]]) -> None:
    for path, (title, paragraphs, number) in pages.items():
        site.put(
            path, gov_cn_page(title, paragraphs, doc_number=number, issuer="数据局", pub_date="2024-05-06")
        )
    links = "".join(f'<li><a href="{path}">{title}</a></li>' for path, (title, _, _) in pages.items())
    site.put("/list/", f"<html><body><ul>{links}</ul></body></html>")


def _config(site: LocalSite, subscribers: str = "") -> str:
    return f"""
sources:
  - id: gov
    name: 数据局
    listing_urls: ["{site.url("/list/")}"]
    link_pattern: "/content/"
    min_delay_s: 0
{subscribers}
"""


OLD_BODY = [
    "各省、自治区、直辖市数据管理部门：",
    "现将《公共数据共享管理办法》印发给你们，请认真贯彻执行。",
    "第一条 为规范公共数据共享，促进数字经济发展，制定本办法。",
]
NEW_BODY = [
    "各省、自治区、直辖市数据管理部门：",
    "现将《公共数据资源授权运营管理办法》印发给你们，请认真贯彻执行。",
    "第三十条 本办法自2024年6月1日起施行。《公共数据共享管理办法》（数办发〔2019〕3号）同时废止。",
]


def test_a_notice_that_repeals_another_marks_it_repealed(site: LocalSite, db_url: str) -> None:
    _gov_site(site, {"/content/old.html": (OLD_TITLE, OLD_BODY, OLD_NUMBER)})
    engine = make_engine(db_url)
    try:
        config = parse_config(_config(site))
        assert run_cycle(config, engine).errors == 0
        with session_factory(engine)() as session:
            old_id = _by_number(session, OLD_NUMBER).id
            assert document_graph(session, old_id)["repealed_by"] == []
        _gov_site(
            site,
            {
                "/content/old.html": (OLD_TITLE, OLD_BODY, OLD_NUMBER),
                "/content/new.html": (NEW_TITLE, NEW_BODY, NEW_NUMBER),
            },
        )
        assert run_cycle(config, engine).errors == 0
        with session_factory(engine)() as session:
            new_id = _by_number(session, NEW_NUMBER).id
            graph = document_graph(session, old_id)
            assert [(i["id"], i["kind"]) for i in graph["repealed_by"]] == [(new_id, "repeals")]
        page = TestClient(create_app(engine)).get(f"/documents/{old_id}").text
        assert "已废止" in page and f'href="/documents/{new_id}"' in page
        # The repealing notice is not itself repealed, and its own plan is not a reference.
        newer = TestClient(create_app(engine)).get(f"/documents/{new_id}").text
        assert "已废止" not in newer.split("This document references")[0]
    finally:
        engine.dispose()


def test_a_reference_to_a_document_not_yet_known_resolves_when_it_appears(
    site: LocalSite, sqlite_url: str
) -> None:
    _gov_site(site, {"/content/new.html": (NEW_TITLE, NEW_BODY, NEW_NUMBER)})
    engine = make_engine(sqlite_url)
    try:
        config = parse_config(_config(site))
        assert run_cycle(config, engine).errors == 0
        with session_factory(engine)() as session:
            ref = session.scalar(select(DocumentReference).where(DocumentReference.doc_number == OLD_NUMBER))
            assert ref is not None and ref.target_document_id is None and ref.kind == "repeals"
        _gov_site(
            site,
            {
                "/content/new.html": (NEW_TITLE, NEW_BODY, NEW_NUMBER),
                "/content/old.html": (OLD_TITLE, OLD_BODY, OLD_NUMBER),
            },
        )
        assert run_cycle(config, engine).errors == 0
        with session_factory(engine)() as session:
            old = _by_number(session, OLD_NUMBER)
            ref = session.scalar(select(DocumentReference).where(DocumentReference.doc_number == OLD_NUMBER))
            assert ref is not None and (ref.target_document_id, ref.resolved_by) == (old.id, "number")
            assert document_graph(session, old.id)["repealed_by"][0]["title"] == NEW_TITLE
    finally:
        engine.dispose()


def test_subscribers_follow_what_cites_a_document(site: LocalSite, sqlite_url: str) -> None:
    """`follows: [数办发〔2019〕3号]`: the new notice that repeals it is alerted (as `new`), an
    unrelated new notice is not, although both are relevant digital-economy documents."""
    subscribers = """
subscribers:
  - email: follower@example.org
    events: [new]
    follows: ["数办发[2019]3号"]
  - email: everyone@example.org
    events: [new]
"""
    _gov_site(site, {"/content/old.html": (OLD_TITLE, OLD_BODY, OLD_NUMBER)})
    engine = make_engine(sqlite_url)
    try:
        config = parse_config(_config(site, subscribers))
        assert run_cycle(config, engine).errors == 0  # the baseline: no alerts
        other_body = ["第一条 为促进数字经济和数据要素市场发展，制定本通知。"]
        _gov_site(
            site,
            {
                "/content/old.html": (OLD_TITLE, OLD_BODY, OLD_NUMBER),
                "/content/new.html": (NEW_TITLE, NEW_BODY, NEW_NUMBER),
                "/content/other.html": (
                    "数据局关于推进数据要素市场建设的通知",
                    other_body,
                    "数办发〔2024〕9号",
                ),
            },
        )
        assert run_cycle(config, engine).errors == 0
        with session_factory(engine)() as session:
            sent = session.execute(
                select(Subscriber.email, Document.doc_number)
                .join(OutboxMessage, OutboxMessage.subscriber_id == Subscriber.id)
                .join(ChangeEvent, ChangeEvent.id == OutboxMessage.event_id)
                .join(Document, Document.id == ChangeEvent.document_id)
            ).all()
        assert sorted(sent) == sorted(
            [
                ("everyone@example.org", NEW_NUMBER),
                ("everyone@example.org", "数办发〔2024〕9号"),
                ("follower@example.org", NEW_NUMBER),
            ]
        )
    finally:
        engine.dispose()


# --- the pure parts ----------------------------------------------------------------------------------


def test_the_title_a_notice_publishes() -> None:
    assert publishes("国务院关于印发“十四五”数字经济发展规划的通知") == "“十四五”数字经济发展规划"
    assert publishes("关于印发《公共数据共享管理办法》的通知") == "公共数据共享管理办法"
    assert publishes("国务院办公厅转发国家发展改革委关于推动平台经济规范健康持续发展若干意见的通知")
    assert publishes("“十四五”数字经济发展规划") is None


def test_provinces_from_issuer_title_or_number() -> None:
    assert province_of("江西省人民政府", None, None) == "江西"
    assert (
        province_of(None, "浙江省人民政府办公厅关于印发浙江省数字经济发展“十四五”规划的通知", None) == "浙江"
    )
    assert province_of(None, "关于印发数字经济发展规划的通知", "黔府发〔2022〕3号") == "贵州"
    assert province_of("国务院", "国务院关于印发“十四五”数字经济发展规划的通知", NATIONAL) is None


def test_follow_keys_ignore_brackets_and_quotes() -> None:
    assert follow_key("国发[2021]29号") == follow_key("国发〔2021〕第29号") == NATIONAL
    assert follow_key("《“十四五”数字经济发展规划》") == follow_key("十四五数字经济发展规划")


def test_resolver_prefers_number_then_title_then_fuzzy_title() -> None:
    resolver = Resolver()
    resolver.add(1, "国务院关于印发“十四五”数字经济发展规划的通知", NATIONAL)
    resolver.add(2, "财经网：国务院关于印发“十四五”数字经济发展规划的通知", NATIONAL, original=False)
    resolver.add(3, "数字中国建设整体布局规划（2023年）", None)
    assert resolver.resolve(None, NATIONAL).document_id == 1  # type: ignore[union-attr]
    assert resolver.resolve("“十四五”数字经济发展规划", None).document_id == 1  # type: ignore[union-attr]
    found = resolver.resolve("数字中国建设整体布局规划", None)
    assert found is not None and (found.document_id, found.how) == (3, "fuzzy-title")
    assert resolver.resolve("数据安全法", None) is None
    assert resolver.resolve(None, NATIONAL, exclude=1).document_id == 2  # type: ignore[union-attr]


def test_cli_and_api_show_the_graph_and_rebuild_reads_it_again(
    demo: DemoServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from policywatch.cli import main

    engine = make_engine(sqlite_url)
    try:
        assert run_cycle(parse_config(demo_config(demo.base_url)), engine).errors == 0
        with session_factory(engine)() as session:
            jiangxi_id = _by_number(session, JIANGXI).id
            national_id = _by_number(session, NATIONAL).id
            before = session.query(DocumentReference).count()
        api = TestClient(create_app(engine)).get(f"/api/documents/{national_id}/graph").json()
        assert [i["id"] for i in api["implementations"]] == [jiangxi_id]
        assert [p["name"] for p in api["provinces"]] == ["江西"]
        # A store whose references were lost (made before they were read) gets them back.
        with session_factory(engine)() as session:
            session.query(DocumentReference).delete()
            session.commit()
    finally:
        engine.dispose()
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", sqlite_url)
    assert main(["references", "--rebuild"]) == 0
    assert f"{before} reference(s)" in capsys.readouterr().out
    assert main(["references", "国发[2021]29号"]) == 0
    out = capsys.readouterr().out
    assert "实施文件 (implements)" in out and f"#{jiangxi_id}" in out and "[江西]" in out
    assert main(["references", "赣府发〔2022〕11号", "--json"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert any(
        e["target"] and e["target"]["id"] == national_id for g in graph["references"] for e in g["entries"]
    )


def test_a_changed_version_that_cites_the_same_keeps_the_resolved_references(
    tmp_path: Path, sqlite_url: str
) -> None:
    from policywatch.demosite.site import advance

    state = tmp_path / "demo-site.json"
    engine = make_engine(sqlite_url)
    try:
        with DemoServer("127.0.0.1", 0, state) as server:
            config = parse_config(demo_config(server.base_url))
            assert run_cycle(config, engine).errors == 0
            advance(state)
            advance(state)  # step 2: a figure of Jiangxi's plan changes (8354 → 8500)
            assert run_cycle(config, engine).changed == 1
        with session_factory(engine)() as session:
            jiangxi = _by_number(session, JIANGXI)
            national = _by_number(session, NATIONAL)
            rows = session.scalars(
                select(DocumentReference).where(DocumentReference.document_id == jiangxi.id)
            ).all()
            by_version: dict[int, list[tuple[str, str | None, int | None]]] = {}
            for r in rows:
                by_version.setdefault(r.version_id, []).append((r.kind, r.title, r.target_document_id))
            assert len(by_version) == 2 and jiangxi.current_version_id in by_version
            old, new = (sorted(v) for _, v in sorted(by_version.items()))
            assert old == new and any(target == national.id for _, _, target in new)
            # The graph reads the current version's.
            assert [i["id"] for i in document_graph(session, national.id)["implementations"]] == [jiangxi.id]
    finally:
        engine.dispose()


def test_an_amended_document_lists_its_amendments(site: LocalSite, sqlite_url: str) -> None:
    amending_title = "数据局关于修改《公共数据共享管理办法》的决定"
    amending = [
        "数据局决定对《公共数据共享管理办法》（数办发〔2019〕3号）作如下修改：",
        "一、将第一条修改为：……",
    ]
    _gov_site(site, {"/content/old.html": (OLD_TITLE, OLD_BODY, OLD_NUMBER)})
    engine = make_engine(sqlite_url)
    try:
        config = parse_config(_config(site))
        assert run_cycle(config, engine).errors == 0
        _gov_site(
            site,
            {
                "/content/old.html": (OLD_TITLE, OLD_BODY, OLD_NUMBER),
                "/content/amend.html": (amending_title, amending, "数办发〔2024〕11号"),
            },
        )
        assert run_cycle(config, engine).errors == 0
        with session_factory(engine)() as session:
            old_id = _by_number(session, OLD_NUMBER).id
            amend_id = _by_number(session, "数办发〔2024〕11号").id
            graph = document_graph(session, old_id)
            assert [i["id"] for i in graph["amended_by"]] == [amend_id] and graph["repealed_by"] == []
        page = TestClient(create_app(engine)).get(f"/documents/{old_id}").text
        assert "已修订" in page and f'href="/documents/{amend_id}"' in page and "已废止" not in page
    finally:
        engine.dispose()
