"""crawlers.discover: canonical URLs and link discovery on listing pages."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawlers import Fetcher, canonical_url, discover_links
from tests.support.site import LocalSite

LISTING = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>政策文件</title></head><body>
<div class="nav"><a href="/">首页</a> <a href="#main">跳到正文</a> <a href="javascript:void(0)">打印</a>
 <a href="JavaScript:window.close()">关闭</a> <a href="mailto:webmaster@example.gov.cn">联系我们</a>
 <a href="tel:12345">电话</a></div>
<ul class="list">
 <li><a href="./202205/t20220525_1.html?utm_source=wechat&utm_medium=share">江西省"十四五"数字经济发展规划</a></li>
 <li><a href="../zcwj/202201/t20220112_2.html#content">"十四五"数字经济发展规划</a></li>
 <li><a href="202205/t20220525_1.html">重复链接</a></li>
 <li><a href="https://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm?spm=a.b.c&id=7">国务院</a></li>
 <li><a href="HTTP://WWW.GOV.CN:80/zhengce/content/2022-01/12/content_5667817.htm?id=7#p1">国务院(重复)</a></li>
 <li><a href="
   202204/t20220401_3.html ">带换行的链接</a></li>
 <li><a href="/attach/guide.pdf">附件</a></li>
 <li><a>no href</a><a href="">empty</a></li>
</ul></body></html>
"""
BASE = "http://drc.jiangxi.gov.cn/zcwj/index.html"


def test_relative_links_made_absolute_and_canonical():
    links = discover_links(LISTING, BASE, r".")
    assert links == [
        "http://drc.jiangxi.gov.cn/",
        "http://drc.jiangxi.gov.cn/zcwj/202205/t20220525_1.html",
        "http://drc.jiangxi.gov.cn/zcwj/202201/t20220112_2.html",
        "https://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm?id=7",
        "http://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm?id=7",
        "http://drc.jiangxi.gov.cn/zcwj/202204/t20220401_3.html",
        "http://drc.jiangxi.gov.cn/attach/guide.pdf",
    ]


def test_pattern_filtering():
    article = r"/zcwj/\d{6}/t\d{8}_\d+\.html$"
    assert discover_links(LISTING, BASE, article) == [
        "http://drc.jiangxi.gov.cn/zcwj/202205/t20220525_1.html",
        "http://drc.jiangxi.gov.cn/zcwj/202201/t20220112_2.html",
        "http://drc.jiangxi.gov.cn/zcwj/202204/t20220401_3.html",
    ]
    compiled = re.compile(r"gov\.cn/zhengce/content/")
    assert discover_links(LISTING, BASE, compiled) == [
        "https://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm?id=7",
        "http://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm?id=7",
    ]
    assert discover_links(LISTING, BASE, r"nothing-matches") == []


def test_non_http_links_ignored():
    links = discover_links(LISTING, BASE, r".")
    assert all(link.startswith(("http://", "https://")) for link in links)
    assert not any("javascript" in link.lower() or "mailto" in link or "tel:" in link for link in links)
    assert not any("#" in link for link in links)


def test_base_href_respected():
    html = '<html><head><base href="http://www.example.gov.cn/col/col123/"></head>'
    html += '<body><a href="art_1.html">一</a><a href="/x/art_2.html">二</a></body></html>'
    assert discover_links(html, "http://mirror.example.cn/", r"art_") == [
        "http://www.example.gov.cn/col/col123/art_1.html",
        "http://www.example.gov.cn/x/art_2.html",
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://WWW.Gov.CN:80/a/./b/../c.htm#frag", "http://www.gov.cn/a/c.htm"),
        ("https://www.gov.cn:443", "https://www.gov.cn/"),
        ("https://www.gov.cn:8443/x", "https://www.gov.cn:8443/x"),
        (
            "http://a.gov.cn/p?utm_source=x&id=3&spm=1.2&b=&UTM_Campaign=y&fbclid=z&gclid=q",
            "http://a.gov.cn/p?id=3&b=",
        ),
        ("http://a.gov.cn/p?z=1&a=2", "http://a.gov.cn/p?z=1&a=2"),  # order kept
        ("http://a.gov.cn/p?from=timeline&id=1", "http://a.gov.cn/p?from=timeline&id=1"),  # conservative
        ("http://a.gov.cn/../../x/./y/", "http://a.gov.cn/x/y/"),
        ("http://a.gov.cn/政策 文件.html", "http://a.gov.cn/%E6%94%BF%E7%AD%96%20%E6%96%87%E4%BB%B6.html"),
        ("http://a.gov.cn/%E6%94%BF.html", "http://a.gov.cn/%E6%94%BF.html"),
        ("http://[::1]:80/x", "http://[::1]/x"),
    ],
)
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected


@pytest.mark.parametrize("url", ["http://a.gov.cn:99999/x", "http://a.gov.cn:8o/x", "http://[::1/x"])
def test_canonical_url_rejects_malformed(url):
    with pytest.raises(ValueError):
        canonical_url(url)
    html = f'<a href="{url}">bad</a><a href="/ok.html">ok</a>'
    assert discover_links(html, "http://a.gov.cn/", ".") == ["http://a.gov.cn/ok.html"]


_segment = st.text(alphabet="abc.-_%20政", min_size=0, max_size=6)
_urls = st.builds(
    lambda scheme, host, port, segs, query, frag: (
        f"{scheme}://{host}{port}/"
        + "/".join(segs)
        + (f"?{query}" if query else "")
        + (f"#{frag}" if frag else "")
    ),
    st.sampled_from(["http", "HTTP", "https"]),
    st.sampled_from(["www.gov.cn", "WWW.GOV.CN", "xxgk.jiangxi.gov.cn"]),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.lists(st.one_of(_segment, st.sampled_from([".", ".."])), max_size=5),
    st.sampled_from(["", "id=1", "utm_source=a&id=2", "a=1&b=2&spm=x"]),
    st.sampled_from(["", "top"]),
)


@given(_urls)
def test_canonical_url_is_idempotent(url):
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "#" not in once and "utm_" not in once and "spm=" not in once
    assert "/./" not in once and "/../" not in once


def test_discover_on_fetched_listing():
    site = LocalSite()
    try:
        site.put("/zcwj/index.html", LISTING.encode("gbk", errors="ignore"), content_type="text/html")
        with Fetcher(respect_robots=False) as f:
            r = f.fetch_page(site.url("/zcwj/index.html"), min_delay_s=0, allow_private=True)
        assert r.ok
        links = discover_links(r.text, r.final_url, r"/zcwj/\d{6}/")
        assert links == [
            site.url("/zcwj/202205/t20220525_1.html"),
            site.url("/zcwj/202201/t20220112_2.html"),
            site.url("/zcwj/202204/t20220401_3.html"),
        ]
    finally:
        site.close()
