"""JSON, RSS and paginated listings, read through a real local site.

Each real source of config/sources.yaml is rebased onto a LocalSite that serves the hand-written
imitation of its listing (tests/fixtures/sites), and its plan is made with the pipeline's own
discovery: the URLs it would fetch are the ones the real listing shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crawlers import Fetcher, canonical_url
from crawlers.listings import ListedLink, ListingError, json_value, parse_feed, parse_json_listing
from policywatch.config import Config, SourceConfig, load_config, parse_config
from policywatch.pipeline import CycleSummary, discover_listed, plan_source
from storage import store
from storage.db import ensure_schema, make_engine, session_factory, unit_of_work
from tests.support.site import LocalSite

ROOT = Path(__file__).parent.parent
SITES = Path(__file__).parent / "fixtures" / "sites"
REAL = load_config(ROOT / "config" / "sources.yaml")


def fixture(name: str) -> bytes:
    return (SITES / name).read_bytes()


def local(url: str, site: LocalSite) -> str:
    parts = urlsplit(url)
    return site.base_url + parts.path + (f"?{parts.query}" if parts.query else "")


def rebase(source: SourceConfig, site: LocalSite, keep: int | None = None) -> SourceConfig:
    """The source with its listings on the local site (`keep`: only that listing)."""
    listings = []
    for i, listing in enumerate(source.all_listings):
        if keep is not None and i != keep:
            continue
        pages = (
            replace(listing.pages, template=local(listing.pages.template, site)) if listing.pages else None
        )
        listings.append(replace(listing, url=local(listing.url, site), pages=pages))
    return replace(source, listing_urls=(), listings=tuple(listings), min_delay_s=0.0)


def serve(site: LocalSite, url: str, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
    parts = urlsplit(canonical_url(url))
    site.put(parts.path + (f"?{parts.query}" if parts.query else ""), body, content_type=content_type)


@pytest.fixture
def world(site: LocalSite, sqlite_url: str) -> Iterator[tuple[LocalSite, Config, Fetcher]]:
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    fetcher = Fetcher(max_attempts=1, backoff_base_s=0.01)
    yield site, REAL, fetcher
    fetcher.close()
    engine.dispose()


def plan(
    source: SourceConfig, config: Config, fetcher: Fetcher, sqlite_url: str
) -> tuple[list[str], CycleSummary]:
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    try:
        result = plan_source(source, config, session_factory(engine), fetcher)
    finally:
        engine.dispose()
    return [t.url for t in result.new if t.document_id is None], result.summary


def listed_of(source: SourceConfig, fetcher: Fetcher, sqlite_url: str) -> list[ListedLink]:
    """Discovery alone: what the source's listings show, with titles and dates."""
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    factory = session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            store.ensure_source(session, source.id, source.name)
        return discover_listed(source, fetcher, factory, CycleSummary(), True, None)
    finally:
        engine.dispose()


def test_gov_cn_latest_json(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    source = rebase(config.source("gov-cn-zuixin"), site)
    serve(site, source.listings[0].url, fixture("gov_cn_zuixin.json"), "application/json; charset=utf-8")
    urls, summary = plan(source, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert urls == [
        "https://www.gov.cn/zhengce/zhengceku/202409/content_6976233.htm",
        "https://www.gov.cn/zhengce/content/202409/content_6975801.htm",
        "https://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm",  # once: utm_* dropped
    ]  # the interpretation page (/zhengce/202409/…) is not a document


def test_gov_cn_policy_library_json_with_pages(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    source = rebase(config.source("gov-cn-zhengceku"), site)
    first, bm = source.listings
    serve(site, first.url, fixture("gov_cn_zhengceku.json"), "application/json")
    # page 2 exists, page 3 does not: the listing ends there, which is no error
    page2 = {
        "searchVO": {
            "listVO": [
                {"title": "第二页的文件", "url": "https://www.gov.cn/zhengce/content/202301/content_1.htm"}
            ]
        }
    }
    serve(site, first.page_urls()[1], json.dumps(page2, ensure_ascii=False).encode(), "application/json")
    ministries = {
        "searchVO": {
            "listVO": [
                {"title": "部门文件", "url": "https://www.gov.cn/zhengce/zhengceku/202409/content_2.htm"}
            ]
        }
    }
    serve(
        site, bm.url, json.dumps(ministries, ensure_ascii=False).encode(), "text/html"
    )  # wrong type: still JSON
    urls, summary = plan(source, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert urls == [
        "https://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm",
        "https://www.gov.cn/zhengce/content/202409/content_6975801.htm",
        "https://www.gov.cn/zhengce/content/202301/content_1.htm",
        "https://www.gov.cn/zhengce/zhengceku/202409/content_2.htm",
    ]
    requested = [r.path for r in site.requests if "search-gov" in r.path]
    assert len(requested) == 4  # p=1, p=2, p=3 (404: the end), the ministries' list


def test_listing_titles_are_kept_and_cleaned(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    source = rebase(config.source("gov-cn-zhengceku"), site, keep=0)
    serve(site, source.listings[0].url, fixture("gov_cn_zhengceku.json"), "application/json")
    listed = listed_of(source, fetcher, sqlite_url)
    assert listed[0].title == "国务院关于印发“十四五”数字经济发展规划的通知"  # <em> of the search API removed
    assert listed[0].date == "2022.01.12"


def test_nda_paginated_html(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    source = rebase(config.source("nda-zcfb"), site)
    listing = source.listings[0]
    pages = listing.page_urls()
    assert [urlsplit(p).path.rsplit("/", 1)[1] for p in pages] == [
        "index_pc_1.html",
        "index_pc_2.html",
        "index_pc_3.html",
    ]
    serve(site, pages[0], fixture("nda_list_1.html"))
    serve(site, pages[1], fixture("nda_list_2.html"))
    urls, summary = plan(source, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert [urlsplit(u).path for u in urls] == [
        "/sjj/zwgk/zcfb/0920/20240920171600123456789_pc.html",
        "/sjj/zwgk/zcfb/0412/20240412094512318765432_pc.html",
        "/sjj/zwgk/zcfb/0105/20240105110233467123987_pc.html",
    ]


def test_ndrc_index_then_index_1_with_a_page_limit(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    full = config.source("ndrc-zcfb")
    tz = next(i for i, listing in enumerate(full.all_listings) if "/zcfb/tz/" in listing.url)
    source = rebase(full, site, keep=tz)
    listing = source.listings[0]
    assert listing.pages is not None and listing.pages.max_pages == 3
    names = [urlsplit(p).path.rsplit("/", 1)[1] for p in listing.page_urls()]
    assert names == ["index.html", "index_1.html", "index_2.html"]
    serve(site, listing.page_urls()[0], fixture("ndrc_list.html"))
    serve(site, listing.page_urls()[1], fixture("ndrc_list_1.html"))
    serve(site, local("https://www.ndrc.gov.cn/xxgk/zcfb/tz/index_3.html", site), fixture("ndrc_list_1.html"))
    urls, summary = plan(source, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert [urlsplit(u).path for u in urls] == [
        "/xxgk/zcfb/tz/202409/t20240920_1392011.html",
        "/xxgk/zcfb/tz/202409/t20240918_1391988.html",
        "/xxgk/zcfb/tz/202405/t20240510_1387002.html",
    ]
    paths = [r.path for r in site.requests]
    assert "/xxgk/zcfb/tz/index_2.html" in paths  # asked for, answered 404: the list ended
    assert "/xxgk/zcfb/tz/index_3.html" not in paths  # beyond the page limit: never asked for


def test_page_limit_stops_a_long_listing(site: LocalSite, sqlite_url: str) -> None:
    for n in range(6):
        name = "index.html" if n == 0 else f"index_{n}.html"
        site.put(f"/list/{name}", f'<a href="/doc/{n}.html">文件{n}</a>')
    config = parse_config(
        f"""
sources:
  - id: paged
    name: 分页
    listings:
      - url: {site.url("/list/index.html")}
        pages: {{template: "{site.url("/list/index_{n}.html")}", first: 1, max: 4}}
    link_pattern: "/doc/"
    min_delay_s: 0
"""
    )
    fetcher = Fetcher(max_attempts=1)
    try:
        urls, summary = plan(config.sources[0], config, fetcher, sqlite_url)
    finally:
        fetcher.close()
    assert summary.errors == 0
    assert [urlsplit(u).path for u in urls] == ["/doc/0.html", "/doc/1.html", "/doc/2.html", "/doc/3.html"]
    assert site.hits["/list/index_4.html"] == 0


def test_a_site_that_ignores_the_page_number_stops_the_pagination(site: LocalSite, sqlite_url: str) -> None:
    same = '<a href="/doc/1.html">一</a><a href="/doc/2.html">二</a>'
    site.put("/list/1.html", same)
    site.put("/list/2.html", same)  # page 2 is page 1 again
    site.put("/list/3.html", '<a href="/doc/3.html">三</a>')
    config = parse_config(
        f"""
sources:
  - id: same
    name: 同一页
    listings:
      - url: {site.url("/list/1.html")}
        pages: {{template: "{site.url("/list/{n}.html")}", max: 5}}
    link_pattern: "/doc/"
"""
    )
    fetcher = Fetcher(max_attempts=1)
    try:
        urls, summary = plan(replace(config.sources[0], min_delay_s=0), config, fetcher, sqlite_url)
    finally:
        fetcher.close()
    assert summary.errors == 0
    assert [urlsplit(u).path for u in urls] == ["/doc/1.html", "/doc/2.html"]
    assert site.hits["/list/3.html"] == 0


def test_miit_search_api_json(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    source = rebase(config.source("miit-zcwj"), site)
    serve(site, source.listings[0].url, fixture("miit_search.json"), "application/json;charset=UTF-8")
    urls, summary = plan(source, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert urls == [
        "https://www.miit.gov.cn/zwgk/zcwj/wjfb/tz/art/2024/art_4ba01aa6d2f54ced8ba3490ea4fb52c4.html",
        "https://www.miit.gov.cn/zwgk/zcwj/wjfb/tz/art/2024/art_c195b1b6c1f343e392ee83bf960af9f6.html",
    ]


def test_cac_protocol_relative_links(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    source = rebase(config.source("cac-zcfg"), site)
    zcfg, wxfb = source.listings
    serve(site, zcfg.url, fixture("cac_list.html"))
    serve(site, wxfb.url, fixture("cac_list.html"))
    urls, summary = plan(source, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert urls == [
        "http://www.cac.gov.cn/2024-09/20/c_1728450286123456.htm",
        "http://www.cac.gov.cn/2024-03/22/c_1712776611775634.htm",
    ]


def test_provincial_listings(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    jiangxi = rebase(config.source("jiangxi-szfwj"), site)
    serve(site, jiangxi.listings[0].url, fixture("jiangxi_list.html"))
    urls, summary = plan(jiangxi, config, fetcher, sqlite_url)
    assert summary.errors == 0 and len(urls) == 2
    assert all("/pc/content/content_" in u for u in urls)

    guizhou = rebase(config.source("guizhou-szfwj"), site)
    qff, qfbf = guizhou.listings
    serve(site, qff.page_urls()[0], fixture("guizhou_list.html"))
    serve(site, qff.page_urls()[1], fixture("guizhou_list_1.html"))
    serve(site, qfbf.url, fixture("guizhou_list_1.html"))
    urls, summary = plan(guizhou, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert urls == [
        "https://www.guizhou.gov.cn/zwgk/zcfg/szfwj/qff/202409/t20240920_85712345.html",
        "https://www.guizhou.gov.cn/zwgk/zcfg/szfwj/qff/202112/t20211230_72108111.html",
    ]


def test_news_sources_json_and_rss(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    eastmoney = rebase(config.source("eastmoney-policy"), site)
    serve(site, eastmoney.listings[0].url, fixture("eastmoney_column.json"), "text/plain; charset=utf-8")
    urls, summary = plan(eastmoney, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert urls == [
        "http://finance.eastmoney.com/a/202409203176543210.html",
        "https://finance.eastmoney.com/a/202409193175412345.html",  # url empty: uniqueUrl
    ]  # the video page is not a document of this source

    chinanews = rebase(config.source("chinanews-finance"), site)
    serve(site, chinanews.listings[0].url, fixture("chinanews_finance.xml"), "application/xml")
    urls, summary = plan(chinanews, config, fetcher, sqlite_url)
    assert summary.errors == 0, summary.failures
    assert urls == [
        "https://www.chinanews.com.cn/cj/2024/09-20/10290001.shtml",
        "https://www.chinanews.com.cn/cj/2024/09-19/10289876.shtml",
    ]


def test_a_broken_json_listing_is_a_listing_error(world, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    site, config, fetcher = world
    source = rebase(config.source("gov-cn-zuixin"), site)
    serve(
        site,
        source.listings[0].url,
        b"<html><body>\xe7\xbd\x91\xe7\xab\x99\xe7\xbb\xb4\xe6\x8a\xa4\xe4\xb8\xad</body></html>",
    )
    urls, summary = plan(source, config, fetcher, sqlite_url)
    assert urls == [] and summary.errors == 1
    assert "not valid JSON" in summary.failures[0]["error"]


# --- the parsers on their own ------------------------------------------------------------------------


def test_json_paths() -> None:
    data = {"data": {"list": [{"u": "a"}, {"u": "b"}]}}
    assert json_value(data, "data.list.1.u") == "b"
    assert json_value(data, "data.list.-1.u") == "b"
    assert json_value(data, "data.missing") is None
    assert json_value(data, "") is data


def test_jsonp_and_html_fragment_listings() -> None:
    jsonp = 'callback({"rows": [{"link": "/a/1.html", "name": "一"}]});'
    [link] = parse_json_listing(
        jsonp, "https://x.gov.cn/list/", items="rows", url_field=("link",), title_field=("name",)
    )
    assert (link.url, link.title) == ("https://x.gov.cn/a/1.html", "一")
    # A CMS "unit build" API: JSON around an HTML fragment (the jpaas front/page/build/unit answer).
    unit = json.dumps(
        {
            "data": {
                "html": '<div class="page-content"><li><a href="/col/art/2024/art_1.html" title="文件一">文件一</a></li></div>'
            }
        }
    )
    [link] = parse_json_listing(
        unit, "https://x.gov.cn/col/index.html", html_field="data.html", pattern=re.compile("/art/")
    )
    assert (link.url, link.title) == ("https://x.gov.cn/col/art/2024/art_1.html", "文件一")
    with pytest.raises(ListingError):
        parse_json_listing('{"data": {}}', "https://x.gov.cn/", items="data.list")


def test_atom_and_rdf_feeds() -> None:
    atom = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><title>一</title><link rel="alternate" href="https://x.cn/1.html"/><link rel="enclosure" href="https://x.cn/1.pdf"/><updated>2024-09-20T10:00:00+08:00</updated></entry>
<entry><title>二</title><link href="/2.html"/></entry></feed>"""
    links = parse_feed(atom, "https://x.cn/feed.xml")
    assert [(lk.url, lk.title) for lk in links] == [
        ("https://x.cn/1.html", "一"),
        ("https://x.cn/2.html", "二"),
    ]
    assert links[0].date == "2024-09-20T10:00:00+08:00"
    rdf = """<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<item><title>三</title><link>https://x.cn/3.html</link></item></rdf:RDF>"""
    assert [lk.url for lk in parse_feed(rdf, "https://x.cn/")] == ["https://x.cn/3.html"]
    with pytest.raises(ListingError):
        parse_feed("<html><body>not a feed</body></html>", "https://x.cn/")


def test_gbk_rss_feed(site: LocalSite, sqlite_url: str) -> None:
    feed = '<?xml version="1.0" encoding="gb2312"?><rss version="2.0"><channel><title>省政府</title><item><title>数字经济发展规划</title><link>/doc/1.html</link></item></channel></rss>'
    site.put("/rss.xml", feed.encode("gbk"), content_type="text/xml")
    config = parse_config(
        f"""
sources:
  - id: gbk-feed
    name: GBK 订阅
    listings: [{{url: "{site.url("/rss.xml")}", kind: rss}}]
    min_delay_s: 0
"""
    )
    fetcher = Fetcher(max_attempts=1)
    try:
        listed = listed_of(config.sources[0], fetcher, sqlite_url)
    finally:
        fetcher.close()
    assert [(lk.url, lk.title) for lk in listed] == [(site.url("/doc/1.html"), "数字经济发展规划")]
