"""Attachments (附件): found in a page's body, fetched as files, watched as documents of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crawlers import Fetcher
from extraction.document import extract_document, is_attachment_url
from tests.support.site import LocalSite

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(connect_timeout=1, read_timeout=2, backoff_base_s=0.01, max_attempts=1)
    yield f
    f.close()


def test_a_file_is_fetched_as_bytes_whatever_its_content_type(site: LocalSite, fetcher: Fetcher) -> None:
    site.put("/f/plan.pdf", PDF, content_type="application/octet-stream")
    site.put("/f/list.xlsx", b"PK\x03\x04rest", content_type=None)
    for path, body in (("/f/plan.pdf", PDF), ("/f/list.xlsx", b"PK\x03\x04rest")):
        result = fetcher.fetch_page(site.url(path), min_delay_s=0, allow_private=True, file=True)
        assert result.ok and result.body == body and result.error is None, result.error
    # As a page it is still "not HTML", never read as text.
    page = fetcher.fetch_page(site.url("/f/plan.pdf"), min_delay_s=0, allow_private=True)
    assert not page.ok and page.error_kind == "not_html" and page.body is None


def test_a_challenge_served_for_a_file_is_a_fetch_error(site: LocalSite, fetcher: Fetcher) -> None:
    challenge = (
        "<html><script>document.cookie='__jsl_clearance_s=1612345678.9|0|abc';"
        "location.href=location.pathname+location.search</script></html>"
    )
    site.put("/f/plan.pdf", challenge, status=521)
    result = fetcher.fetch_page(site.url("/f/plan.pdf"), min_delay_s=0, allow_private=True, file=True)
    assert not result.ok and result.error_kind == "challenge" and result.body is None
    site.put("/f/gone.pdf", "not found", status=404)
    gone = fetcher.fetch_page(site.url("/f/gone.pdf"), min_delay_s=0, allow_private=True, file=True)
    assert gone.gone and gone.body is None


def test_attachment_links_are_found_in_the_body_and_where_labelled() -> None:
    html = """<html><head><title>关于印发方案的通知</title></head><body>
    <div class="nav"><a href="/about.pdf">年度报告</a></div>
    <div id="UCAP-CONTENT"><p>现将《数字经济发展方案》印发给你们，请认真贯彻执行。各地区要结合实际抓好落实。</p>
    <p>附件：<a href="/files/plan.PDF">1.数字经济发展方案</a>、<a href="list.xlsx?v=2">2.名单</a>
    <a href="javascript:download('x.pdf')">下载</a><a href="/files/plan.PDF#page=2">同上</a></p></div>
    <div class="fj">附件下载：<a href="https://www.gov.cn/files/a.docx">方案全文</a>
    <a href="ftp://www.gov.cn/files/b.pdf">b</a></div></body></html>"""
    doc = extract_document(html, "https://www.gov.cn/zhengce/content/1.htm")
    assert doc.attachments == (
        ("https://www.gov.cn/files/plan.PDF", "1.数字经济发展方案"),
        ("https://www.gov.cn/zhengce/content/list.xlsx?v=2", "2.名单"),
        ("https://www.gov.cn/files/a.docx", "方案全文"),
    )
    # The attachment list is not part of the page's own text or hash: another href, the same text.
    other = extract_document(html.replace("list.xlsx", "l2.xlsx"), "https://www.gov.cn/zhengce/content/1.htm")
    assert other.content_hash == doc.content_hash and other.attachments != doc.attachments
    assert "about.pdf" not in doc.text
    assert is_attachment_url("http://x/a.ofd") and is_attachment_url("http://x/a.WPS?x=1")
    assert not is_attachment_url("http://x/a.pdf.html") and not is_attachment_url("http://x/pdf/")
