"""The `hanweb` listing kind: Hanweb 大汉 CMS /module/web/jpage/dataproxy.jsp lists (XML <record>
CDATA items, <totalpage>), their pagination, and the same list discovered through a browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from crawlers import Fetcher
from crawlers.listings import (
    ListingError,
    fetch_listing,
    hanweb_page_count,
    hanweb_page_urls,
    parse_hanweb_listing,
)
from tests.support.challenges import ChallengeSite

BASE = "https://www.example.gov.cn/module/web/jpage/dataproxy.jsp?startrecord=1&endrecord=45&perpage=15&columnid=1229&unitid=5678&webid=1"
PROXY = """<?xml version="1.0" encoding="UTF-8"?>
<datastore>
<nextgroup><![CDATA[<a href="/module/web/jpage/dataproxy.jsp?page=1&webid=1&columnid=1229"></a>]]></nextgroup>
<recordset>
<record><![CDATA[
<li><a href="/art/2024/3/5/art_1229_801.html" title="省人民政府关于加快数据要素市场建设的意见" target="_blank">省人民政府关于加快数据…</a><span>2024-03-05</span></li>
]]></record>
<record><![CDATA[<li><span class="date">2024年3月1日</span><a href="./art_1229_800.html">关于印发数字经济
发展规划的通知</a></li>]]></record>
<record>&lt;li&gt;&lt;a href="http://www.example.gov.cn/art/2024/2/9/art_1229_799.html"&gt;转义的记录&lt;/a&gt;&lt;/li&gt;</record>
<record><![CDATA[<li><a href="/art/2024/3/5/art_1229_801.html">重复</a></li>]]></record>
<record><![CDATA[<li>没有链接的记录</li>]]></record>
</recordset>
<totalrecord>95</totalrecord>
<totalpage>7</totalpage>
</datastore>
"""


def test_records_are_the_documents() -> None:
    links = parse_hanweb_listing(PROXY, BASE, None)
    assert [link.url for link in links] == [
        "https://www.example.gov.cn/art/2024/3/5/art_1229_801.html",
        "https://www.example.gov.cn/module/web/jpage/art_1229_800.html",
        "http://www.example.gov.cn/art/2024/2/9/art_1229_799.html",
    ]
    assert (
        links[0].title == "省人民政府关于加快数据要素市场建设的意见"
    )  # the title attribute beats the cut text
    assert links[1].title == "关于印发数字经济 发展规划的通知"
    assert [link.date for link in links] == ["2024-03-05", "2024-03-01", None]


def test_pattern_filters_the_records() -> None:
    links = parse_hanweb_listing(PROXY, BASE, re.compile(r"/art/2024/3/"))
    assert [link.url.rsplit("/", 1)[1] for link in links] == ["art_1229_801.html"]


def test_not_a_dataproxy_answer() -> None:
    with pytest.raises(ListingError, match="not a Hanweb"):
        parse_hanweb_listing("<html><body>系统繁忙</body></html>", BASE, None)
    empty = '<?xml version="1.0"?><datastore><recordset></recordset><totalpage>0</totalpage></datastore>'
    assert parse_hanweb_listing(empty, BASE, None) == []


def test_page_urls_move_the_record_window() -> None:
    urls = hanweb_page_urls(BASE, 3)
    windows = [
        (parse_qs(urlsplit(u).query)["startrecord"][0], parse_qs(urlsplit(u).query)["endrecord"][0])
        for u in urls
    ]
    assert windows == [("1", "45"), ("46", "90"), ("91", "135")]
    for u in urls:  # every other parameter kept
        q = parse_qs(urlsplit(u).query)
        assert (q["columnid"], q["unitid"], q["webid"], q["perpage"]) == (["1229"], ["5678"], ["1"], ["15"])
    bare = hanweb_page_urls("https://x.gov.cn/module/web/jpage/dataproxy.jsp?columnid=1&perpage=10", 2)
    assert "startrecord=31" in bare[1] and "endrecord=60" in bare[1]


def test_page_count() -> None:
    assert hanweb_page_count(PROXY, BASE) == 3  # 95 records, 45 a request
    assert hanweb_page_count(PROXY.replace("<totalrecord>95</totalrecord>", ""), BASE) == 3  # 7 × 15 = 105
    assert hanweb_page_count("<datastore/>", BASE) is None


@pytest.fixture
def challenge_site() -> Iterator[ChallengeSite]:
    site = ChallengeSite(hanweb_documents=50)
    try:
        yield site
    finally:
        site.close()


def test_a_live_dataproxy_listing_is_read_page_by_page(challenge_site: ChallengeSite) -> None:
    """As the pipeline would: the first window, its page count, then the next windows."""
    first = challenge_site.url(
        "/open/module/web/jpage/dataproxy.jsp?startrecord=1&endrecord=20&perpage=10&columnid=1229&unitid=5678&webid=1"
    )
    pattern = re.compile(r"/open/art/")
    seen: list[str] = []
    with Fetcher(max_attempts=1) as fetcher:
        result = fetch_listing(fetcher, first, kind="hanweb", min_delay_s=0, allow_private=True)
        assert result.ok, result.error
        pages = hanweb_page_count(result.text or "", first)
        assert pages == 3
        for url in hanweb_page_urls(first, pages or 1):
            result = fetch_listing(fetcher, url, kind="hanweb", min_delay_s=0, allow_private=True)
            assert result.ok, result.error
            seen += [link.url for link in parse_hanweb_listing(result.text or "", result.final_url, pattern)]
    assert seen == [challenge_site.url(path) for path, _, _ in challenge_site.hanweb]
