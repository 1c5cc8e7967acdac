"""Compare two documents (not two versions of one): by id, 发文字号 in any bracket form or URL, with
the version diff's sentence and character marks and moved-passage notes."""

from __future__ import annotations

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
from policywatch.web.app import create_app
from storage.db import make_engine, session_factory
from storage.models import Document
from tests.support.site import LocalSite

NATIONAL = "国务院关于印发数据共享管理办法的通知"
PROVINCIAL = "某省人民政府关于印发数据共享管理实施办法的通知"
SHARED = ["第一条 为促进政务数据共享，制定本办法。", "第二条 数据共享以共享为原则、不共享为例外。"]
MOVED = "第三条 各级政务部门应当编制数据资源目录。"


def test_a_provincial_document_against_the_national_one(site: LocalSite, sqlite_url: str) -> None:
    site.put(
        "/content/national.html", gov_cn_page(NATIONAL, [*SHARED, MOVED], doc_number="国办发〔2024〕5号")
    )
    provincial = [
        MOVED,
        SHARED[0],
        SHARED[1].replace("不共享为例外", "不共享为例外，按需共享"),
        "第九条 本办法自发布之日起施行。",
    ]
    site.put("/content/province.html", gov_cn_page(PROVINCIAL, provincial, doc_number="某府发〔2024〕9号"))
    site.put(
        "/list/",
        '<html><body><a href="/content/national.html">a</a><a href="/content/province.html">b</a></body></html>',
    )
    config = parse_config(
        f'sources:\n  - id: gov\n    name: 演示\n    listing_urls: ["{site.url("/list/")}"]\n'
        '    link_pattern: "/content/"\n    min_delay_s: 0\n'
    )
    engine = make_engine(sqlite_url)
    try:
        assert run_cycle(config, engine).errors == 0
        with session_factory(engine)() as session:
            ids = {d.doc_number: d.id for d in session.scalars(select(Document))}
        client = TestClient(create_app(engine), follow_redirects=False)
        answer = client.get("/compare", params={"a": "国办发[2024]第5号", "b": "某府发（2024）9号"})
        assert answer.status_code == 303 and answer.headers["location"].startswith("/diff/")
        page = client.get(answer.headers["location"]).text
        assert NATIONAL in page and PROVINCIAL in page and "two different documents" in page
        assert (
            'pw-ins">,按需共享<' in page
        )  # characters inside a sentence (compared NFKC: a half-width comma)
        assert "moved from" in page  # the article that moved to the top
        assert "本办法自发布之日起施行" in page
        # The same by id and by URL; the API answers with the diff's JSON.
        by_id = client.get("/compare", params={"a": ids["国办发〔2024〕5号"], "b": ids["某府发〔2024〕9号"]})
        assert by_id.headers["location"] == answer.headers["location"]
        by_url = client.get(
            "/compare", params={"a": site.url("/content/national.html"), "b": ids["某府发〔2024〕9号"]}
        )
        assert by_url.headers["location"] == answer.headers["location"]
        api = TestClient(create_app(engine)).get(
            "/api/compare", params={"a": "国办发〔2024〕5号", "b": "某府发〔2024〕9号"}
        )
        assert api.status_code == 200 and api.json()["changes"]
        # Half a pair: the form, with what was recognised; an unknown document: 404.
        form = client.get("/compare", params={"a": "国办发〔2024〕5号"}).text
        assert 'name="b"' in form and NATIONAL in form
        assert client.get("/compare", params={"a": "国办发〔2099〕1号", "b": "1"}).status_code == 404
        assert client.get("/api/compare", params={"a": "1"}).status_code == 400
    finally:
        engine.dispose()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoServer]:
    with DemoServer("127.0.0.1", 0, tmp_path / "demo-site.json") as server:
        yield server


def test_the_document_page_links_an_implementation_to_a_comparison(demo: DemoServer, sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        assert run_cycle(parse_config(demo_config(demo.base_url)), engine).errors == 0
        with session_factory(engine)() as session:
            national = session.scalar(select(Document).where(Document.doc_number == "国发〔2021〕29号"))
            assert national is not None
            national_id = national.id
        client = TestClient(create_app(engine))
        page = client.get(f"/documents/{national_id}").text
        link = page.split('class="compare" href="')[1].split('"')[0].replace("&amp;", "&")
        compared = client.get(link).text
        assert "two different documents" in compared and "江西省" in compared
    finally:
        engine.dispose()
