"""Search as analysts reported it broken: 发文字号 in any bracket form and number prefixes, old text
(a figure since replaced) with the history switch, removed documents marked, filters, ranking.
Documents come through the real pipeline from a local site, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from policywatch.cli import main
from policywatch.config import parse_config
from policywatch.demosite.pages import gov_cn_page, provincial_page
from policywatch.pipeline import run_cycle
from policywatch.search import SearchQuery, search
from policywatch.web.app import create_app
from storage.db import make_engine, session_factory
from tests.support.site import LocalSite

DATA_TITLE = "国家数据局关于开展数据要素×行动试点的通知"
DATA_NUMBER = "国数发〔2024〕3号"
DATA_PARAS = [
    "各省、自治区、直辖市数据管理部门：",
    "到2026年，在35个左右城市开展数据要素×行动试点，培育一批数据要素应用场景。",
    "各地要加强组织保障，建立工作机制。",
]
JX_TITLE = "江西省人民政府关于印发江西省数字政府建设方案的通知"
JX_NUMBER = "赣府发〔2022〕11号"
JX_PARAS = [
    "各市、县（区）人民政府：",
    "现将《江西省数字政府建设方案》印发给你们，请认真贯彻执行。",
    "推进政务数据共享。",
]
CITING_TITLE = "萍乡市贯彻落实全省数字政府建设方案的通知"
CITING_PARAS = ["为贯彻落实赣府发〔2022〕11号文件精神，结合本市实际，制定本通知。", "加快政务数据共享。"]
GONE_TITLE = "关于征集数据要素典型案例的公告"
GONE_PARAS = ["为总结推广数据要素典型案例，现面向社会公开征集。", "征集时间截至2024年6月30日。"]
TEXT_ONLY_TITLE = "关于推进政务服务改革的通知"
TEXT_ONLY_PARAS = ["推进数据要素流通。数据要素市场建设。数据要素安全治理。", "其他事项另行通知。"]


@dataclass
class Store:
    url: str
    ids: dict[str, int]


def _pages(site: LocalSite, figure: str, gone: bool) -> None:
    paths = {
        "/gov/content/data.html": gov_cn_page(
            DATA_TITLE,
            [p.replace("35个左右", figure) for p in DATA_PARAS],
            doc_number=DATA_NUMBER,
            issuer="国家数据局",
            pub_date="2024-05-06",
        ),
        "/gov/content/gone.html": gov_cn_page(
            GONE_TITLE, GONE_PARAS, issuer="国家数据局", pub_date="2024-03-01"
        ),
        "/gov/content/text.html": gov_cn_page(
            TEXT_ONLY_TITLE, TEXT_ONLY_PARAS, issuer="某局", pub_date="2023-01-05"
        ),
    }
    for path, body in paths.items():
        site.put(path, body)
    if gone:
        site.put("/gov/content/gone.html", "<html><body>not found</body></html>", status=404)
    links = "".join(f'<li><a href="{p}">文件</a></li>' for p in paths)
    site.put("/gov/list/", f"<html><body><ul>{links}</ul></body></html>")
    site.put(
        "/jx/content/plan.html",
        provincial_page(JX_TITLE, JX_PARAS, doc_number=JX_NUMBER, pub_date="2022-05-26", counter=1),
    )
    site.put(
        "/jx/content/city.html", provincial_page(CITING_TITLE, CITING_PARAS, pub_date="2022-08-01", counter=1)
    )
    site.put(
        "/jx/list/",
        '<html><body><ul><li><a href="/jx/content/plan.html">a</a></li>'
        '<li><a href="/jx/content/city.html">b</a></li></ul></body></html>',
    )


@pytest.fixture
def store(site: LocalSite, db_url: str) -> Iterator[Store]:
    config = parse_config(
        f"""
sources:
  - id: gov
    name: 国家数据局
    listing_urls: ["{site.url("/gov/list/")}"]
    link_pattern: "/gov/content/"
    min_delay_s: 0
  - id: jx
    name: 江西省人民政府
    listing_urls: ["{site.url("/jx/list/")}"]
    link_pattern: "/jx/content/"
    min_delay_s: 0
settings:
  max_attempts: 1
"""
    )
    engine = make_engine(db_url)
    try:
        _pages(site, "35个左右", gone=False)
        assert run_cycle(config, engine).errors == 0
        _pages(site, "50个左右", gone=True)
        second = run_cycle(config, engine)
        assert (second.changed, second.removed) == (1, 1), second
        from sqlalchemy import select

        from storage.models import Document

        with session_factory(engine)() as session:
            ids = {d.url.rsplit("/", 1)[-1]: d.id for d in session.scalars(select(Document))}
        yield Store(db_url, ids)
    finally:
        engine.dispose()


def _search(store: Store, **kwargs: object) -> list[dict[str, object]]:
    engine = make_engine(store.url)
    try:
        with session_factory(engine)() as session:
            return search(session, SearchQuery(**kwargs))  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_numbers_in_any_bracket_form_and_number_prefixes(store: Store) -> None:
    for typed in ("国数发〔2024〕3号", "国数发[2024]3号", "国数发（2024）第3号", "国数发【2024】03号"):
        hits = _search(store, text=typed)
        assert [(h["document_id"], h["match"]) for h in hits[:1]] == [(store.ids["data.html"], "number")], (
            typed
        )
    hits = _search(store, text="赣府发")
    assert [h["document_id"] for h in hits] == [store.ids["plan.html"], store.ids["city.html"]]
    assert [h["match"] for h in hits] == ["number-prefix", "text"]  # the number first, the citing text after


def test_old_text_is_found_with_history_and_marked_gone(store: Store) -> None:
    assert _search(store, text="35个左右城市") == []  # not in any current text
    [hit] = _search(store, text="35个左右城市", history=True)
    assert hit["document_id"] == store.ids["data.html"]
    assert hit["in_current"] is False and hit["gone_since"]
    assert [v["current"] for v in hit["versions"]] == [False]  # type: ignore[union-attr]
    assert "35个左右城市" in str(hit["snippet"])
    [now] = _search(store, text="50个左右城市", history=True)
    assert now["in_current"] is True and now["gone_since"] is None


def test_removed_documents_are_marked_and_filters_filter(store: Store) -> None:
    [gone] = _search(store, text="典型案例")
    assert (gone["document_id"], gone["status"]) == (store.ids["gone.html"], "removed")
    assert {h["document_id"] for h in _search(store, text="数据", status="removed")} == {
        store.ids["gone.html"]
    }
    assert all(h["source"] == "jx" for h in _search(store, text="数据", source="jx"))
    assert [h["document_id"] for h in _search(store, issuer="国家数据局", status="active")] == [
        store.ids["data.html"]
    ]
    in_2022 = _search(store, published_from="2022-01-01", published_to="2022-12-31")
    assert {h["document_id"] for h in in_2022} == {store.ids["plan.html"], store.ids["city.html"]}
    assert [h["document_id"] for h in _search(store, text="数据", kind="changed")] == [store.ids["data.html"]]


def test_ranked_title_before_text(store: Store) -> None:
    hits = _search(store, text="数据要素")
    order = [h["document_id"] for h in hits]
    # Titles that name it first (a removed document after a current one), then texts.
    assert order == [store.ids["data.html"], store.ids["gone.html"], store.ids["text.html"]]
    assert [h["match"] for h in hits] == ["title", "title", "text"]


def test_web_page_api_and_cli(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(store.url)
    try:
        client = TestClient(create_app(engine))
        page = client.get("/search", params={"q": "典型案例"}).text
        assert "已删除 removed" in page and GONE_TITLE in page
        page = client.get("/search", params={"q": "35个左右城市", "history": "1"}).text
        assert "no longer in the current text" in page and DATA_TITLE in page
        items = client.get("/api/search", params={"q": "国数发[2024]3号"}).json()["items"]
        assert items[0]["document_id"] == store.ids["data.html"] and items[0]["doc_number"] == DATA_NUMBER
        assert client.get("/api/search").status_code == 400
        assert client.get("/api/search", params={"q": "x", "status": "gone"}).status_code == 400
    finally:
        engine.dispose()
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", store.url)
    assert main(["search", "35个左右城市", "--history", "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert {"document_id", "url", "title", "version_id", "snippet"} <= set(hit) and hit["in_current"] is False
    assert main(["search", "--source", "jx", "--json"]) == 0
    assert {h["source"] for h in json.loads(capsys.readouterr().out)} == {"jx"}


def test_a_common_phrase_is_ranked_newest_first_without_reading_every_text(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import policywatch.search

    counted = [h["document_id"] for h in _search(store, text="数据")]
    monkeypatch.setattr(policywatch.search, "COUNTED_TEXTS", 0)  # as if thousands of texts held it
    newest_first = _search(store, text="数据")
    assert sorted(h["document_id"] for h in newest_first) == sorted(counted)  # the same documents
    texts = [h for h in newest_first if h["match"] == "text"]
    assert texts == sorted(texts, key=lambda h: (h["status"] == "removed", -int(h["document_id"])))
