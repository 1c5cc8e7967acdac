"""crawlers.fetch against a real HTTP server on 127.0.0.1 (the `site` fixture: a LocalSite from conftest)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

import crawlers.fetch as fetch_mod
from crawlers import DEFAULT_USER_AGENT, Fetcher, FetchResult, detect_challenge, is_private_address
from crawlers.challenge import challenge_tag
from policywatch.demosite import CORPUS_DIR
from tests.support.site import LocalSite, Page, RequestInfo

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = sorted(CORPUS_DIR.glob("*.txt"))


def policy_text(n: int = 3000, index: int = 3) -> str:
    return CORPUS[index].read_text(encoding="utf-8")[:n]


def html_page(body_text: str, head: str = "", extra: str = "") -> str:
    paras = "".join(f"<p>{line}</p>\n" for line in body_text.splitlines() if line.strip())
    return (
        f"<!DOCTYPE html><html><head>{head}<title>政策文件</title></head>"
        f"<body><div class='article'>{paras}</div>{extra}</body></html>"
    )


def challenge_fixture(name: str) -> bytes:
    return (FIXTURES / "fetch" / name).read_bytes()


@pytest.fixture
def fetcher():
    f = Fetcher(connect_timeout=1, read_timeout=2, backoff_base_s=0.01, backoff_max_s=2.0)
    yield f
    f.close()


def get(f: Fetcher, url: str, **kwargs: object) -> FetchResult:
    kwargs.setdefault("allow_private", True)
    kwargs.setdefault("min_delay_s", 0)
    return f.fetch_page(url, **kwargs)  # type: ignore[arg-type]


def page_requests(site: LocalSite, path: str) -> list[RequestInfo]:
    return [r for r in site.requests if r.path == path]


# -- success and encodings -------------------------------------------------------------------


def test_utf8_page(site, fetcher):
    html = html_page(policy_text())
    site.put("/a.html", html, etag='"v1"', last_modified="Wed, 25 May 2022 08:00:00 GMT")
    r = get(fetcher, site.url("/a.html"))
    assert r.ok, r.error
    assert r.status == 200 and r.error is None and r.error_kind is None
    assert r.text == html
    assert (r.encoding, r.encoding_source, r.replacement_chars) == ("utf-8", "header", 0)
    assert r.etag == '"v1"' and r.last_modified == "Wed, 25 May 2022 08:00:00 GMT"
    assert r.final_url == site.url("/a.html") and r.redirects == []
    assert r.bytes == len(html.encode("utf-8"))
    assert r.attempts == 1
    assert r.content_type == "text/html; charset=utf-8"
    assert r.fetched_at.tzinfo is not None and abs(datetime.now(UTC) - r.fetched_at) < timedelta(seconds=30)
    assert r.elapsed_s >= 0


def test_gbk_without_charset_header_equals_utf8_text(site, fetcher):
    html = html_page(policy_text(4000, index=0))
    gbk = html.encode("gbk", errors="ignore")
    expected = gbk.decode("gbk")
    site.put("/gbk.html", gbk, content_type="text/html")
    site.put("/utf8.html", expected)
    r = get(fetcher, site.url("/gbk.html"))
    u = get(fetcher, site.url("/utf8.html"))
    assert r.ok and u.ok
    assert r.encoding == "gb18030" and r.encoding_source == "detected"
    assert r.text == u.text == expected
    assert r.replacement_chars == 0


def test_gbk_meta_charset(site, fetcher):
    html = html_page(
        policy_text(800, index=1), head='<meta http-equiv="Content-Type" content="text/html; charset=gbk">'
    )
    site.put("/meta.html", html.encode("gbk", errors="ignore"), content_type="text/html")
    r = get(fetcher, site.url("/meta.html"))
    assert r.ok
    assert (r.encoding, r.encoding_source) == ("gb18030", "meta")
    assert r.text == html.encode("gbk", errors="ignore").decode("gbk")


def test_gb2312_header_decodes_as_gb18030(site, fetcher):
    # 镕 (as in 朱镕基) is in GBK but not in GB2312: a strict gb2312 decoder fails on it.
    html = html_page("国务院副总理朱镕基同志主持会议。\n" + policy_text(1000))
    with pytest.raises(UnicodeEncodeError):
        "镕".encode("gb2312")
    site.put("/gb2312.html", html, encoding="gbk", content_type="text/html; charset=GB2312")
    r = get(fetcher, site.url("/gb2312.html"))
    assert r.ok
    assert (r.encoding, r.encoding_source) == ("gb18030", "header")
    assert "朱镕基" in r.text
    assert r.text == html and r.replacement_chars == 0


def test_wrong_header_charset_falls_back(site, fetcher):
    gbk_html = html_page(policy_text(2000), head='<meta charset="gb2312">')
    site.put("/says-utf8.html", gbk_html, encoding="gbk", content_type="text/html; charset=utf-8")
    utf8_html = html_page(policy_text(2000, index=0))
    site.put("/says-gbk.html", utf8_html, encoding="utf-8", content_type="text/html; charset=gbk")
    r = get(fetcher, site.url("/says-utf8.html"))
    assert r.ok and r.text == gbk_html
    assert (r.encoding, r.encoding_source) == ("gb18030", "meta")
    r = get(fetcher, site.url("/says-gbk.html"))
    assert r.ok and r.text == utf8_html
    assert (r.encoding, r.encoding_source) == ("utf-8", "detected")


def test_latin1_default_header_does_not_garble_gbk(site, fetcher):
    html = html_page(policy_text(2000, index=2))
    site.put("/latin.html", html, encoding="gbk", content_type="text/html; charset=ISO-8859-1")
    r = get(fetcher, site.url("/latin.html"))
    assert r.ok and r.text == html and r.encoding == "gb18030"


def test_replacement_chars_counted(site, fetcher):
    html = html_page(policy_text(3000))
    data = html.encode("utf-8")
    cut = data.index(b"</p>") + 4
    broken = data[:cut] + b"\xff" + data[cut:-10] + b"\xfe" + data[-10:]
    site.put("/broken.html", broken)
    r = get(fetcher, site.url("/broken.html"))
    assert r.ok
    assert (r.encoding, r.encoding_source) == ("utf-8", "header")
    assert r.replacement_chars == 2
    assert r.text.replace("\ufffd", "") == html


def test_encoding_override(site, fetcher):
    html = html_page(policy_text(500))
    site.put("/o.html", html, encoding="gbk", content_type="text/html; charset=utf-8")
    r = get(fetcher, site.url("/o.html"), encoding="gbk")
    assert r.ok and r.text == html
    assert (r.encoding, r.encoding_source) == ("gb18030", "override")
    with pytest.raises(ValueError):
        get(fetcher, site.url("/o.html"), encoding="no-such-codec")


def test_missing_content_type_sniffed(site, fetcher):
    html = html_page(policy_text(500))
    site.put("/notype", html, content_type=None)
    site.put("/blob", b"\x00\x01binary stuff", content_type=None)
    assert get(fetcher, site.url("/notype")).ok
    r = get(fetcher, site.url("/blob"))
    assert r.error_kind == "not_html" and r.text is None


# -- conditional GET, size, time --------------------------------------------------------------


def test_304_and_redirect_keep_the_connection(site, fetcher):
    """A warm cycle is mostly 304s: each must reuse the keep-alive connection, not open a new one."""
    site.put("/c.html", html_page(policy_text(500)), etag='"abc"')
    site.put("/old.html", b"", status=301, headers={"Location": "/c.html"})
    first = get(fetcher, site.url("/c.html"))
    for _ in range(3):
        assert get(fetcher, site.url("/c.html"), etag=first.etag).not_modified
    assert get(fetcher, site.url("/old.html")).ok
    peers = {r.peer for r in site.requests if r.path != "/robots.txt"}
    assert len(peers) == 1, peers


def test_cookies_a_site_sets_are_sent_back(site, fetcher):
    """As a browser (and a requests.Session) does: some CMSs hand out a session cookie on the listing."""
    site.put("/list.html", html_page(policy_text(300)), headers={"Set-Cookie": "JSESSIONID=abc123; Path=/"})
    site.put("/doc.html", html_page(policy_text(300)))
    assert get(fetcher, site.url("/list.html")).ok
    assert "cookie" not in site.requests[-1].headers
    assert get(fetcher, site.url("/doc.html")).ok
    assert site.requests[-1].headers.get("cookie") == "JSESSIONID=abc123"


def test_conditional_get_304(site, fetcher):
    site.put(
        "/c.html", html_page(policy_text(500)), etag='"abc"', last_modified="Wed, 25 May 2022 08:00:00 GMT"
    )
    first = get(fetcher, site.url("/c.html"))
    assert first.ok and first.etag == '"abc"'
    r = get(fetcher, site.url("/c.html"), etag=first.etag)
    assert site.requests[-1].headers.get("if-none-match") == '"abc"'
    assert r.status == 304 and r.not_modified
    assert r.error is None and r.text is None and r.bytes == 0 and not r.ok
    r = get(fetcher, site.url("/c.html"), last_modified=first.last_modified)
    assert site.requests[-1].headers.get("if-modified-since") == "Wed, 25 May 2022 08:00:00 GMT"
    assert r.not_modified
    # No validators: no conditional headers, full body.
    r = get(fetcher, site.url("/c.html"))
    assert "if-none-match" not in site.requests[-1].headers and r.ok and not r.not_modified


def test_max_size(site):
    big = html_page(policy_text(50_000)) * 3
    site.put("/big.html", big)
    site.pages["/stream.html"] = Page(
        body=big.encode(), headers={"Content-Type": "text/html; charset=utf-8"}, send_length=False
    )
    with Fetcher(max_bytes=20_000, connect_timeout=1, read_timeout=2) as f:
        r = get(f, site.url("/big.html"))
        assert r.error_kind == "too_large" and "20000" in r.error and r.text is None
        assert "Content-Length" in r.error  # refused before reading the body
        assert r.attempts == 1 and site.hits["/big.html"] == 1
        r = get(f, site.url("/stream.html"))  # no Content-Length: stopped while streaming
        assert r.error_kind == "too_large" and "Content-Length" not in r.error
        assert 20_000 < r.bytes <= 20_000 + 65_536
        assert r.attempts == 1
        site.put("/small.html", html_page(policy_text(1000)))
        assert get(f, site.url("/small.html")).ok


def test_slow_drip_ends_in_timeout(site):
    # Each byte arrives well within the read timeout, but the whole body would take 30 s.
    site.pages["/drip.html"] = Page(body=b"<html>" + b"x" * 3000, drip_interval_s=0.05, drip_chunk=5)
    with Fetcher(connect_timeout=0.3, read_timeout=0.3, max_attempts=1, respect_robots=False) as f:
        t0 = time.monotonic()
        r = get(f, site.url("/drip.html"))
        took = time.monotonic() - t0
    assert r.error_kind == "timeout" and r.text is None
    assert took < 3, took


def test_pause_longer_than_read_timeout(site):
    site.pages["/stall.html"] = Page(body=b"<html><body>" + b"y" * 50, drip_interval_s=1.0, drip_chunk=20)
    site.pages["/late.html"] = Page(body=b"<html></html>", delay_s=1.0)
    with Fetcher(
        connect_timeout=0.5, read_timeout=0.3, max_attempts=2, backoff_base_s=0.01, respect_robots=False
    ) as f:
        t0 = time.monotonic()
        r = get(f, site.url("/stall.html"))
        assert r.error_kind == "timeout" and "read timeout" in r.error and r.attempts == 2
        r = get(f, site.url("/late.html"))  # headers late
        assert r.error_kind == "timeout" and r.attempts == 2
        assert time.monotonic() - t0 < 4


# -- retries ----------------------------------------------------------------------------------


def test_5xx_retried_then_error(site, fetcher):
    site.put("/err.html", "<html>oops</html>", status=500)
    r = get(fetcher, site.url("/err.html"))
    assert r.error_kind == "http" and r.error == "HTTP 500 after 3 attempts"
    assert r.status == 500 and r.attempts == 3 and site.hits["/err.html"] == 3
    assert not r.ok and not r.gone


def test_503_then_200(site, fetcher):
    html = html_page(policy_text(500))

    def flaky(info: RequestInfo) -> Page:
        if site.hits["/flaky.html"] == 1:
            return Page(body=b"<html>busy</html>", status=503)
        return Page(body=html.encode())

    site.pages["/flaky.html"] = flaky
    r = get(fetcher, site.url("/flaky.html"))
    assert r.ok and r.text == html
    assert r.attempts == 2 and site.hits["/flaky.html"] == 2


def test_429_retry_after_honoured(site, fetcher):
    def limited(info: RequestInfo) -> Page:
        if site.hits["/limited.html"] == 1:
            return Page(
                body=b"slow down", status=429, headers={"Retry-After": "1", "Content-Type": "text/plain"}
            )
        return Page(body=html_page("正文").encode())

    site.pages["/limited.html"] = limited
    r = get(fetcher, site.url("/limited.html"))
    assert r.ok and r.attempts == 2
    first, second = page_requests(site, "/limited.html")
    assert second.at - first.at >= 0.95


def test_retry_after_parsing():
    assert fetch_mod._parse_retry_after("3") == 3.0
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= fetch_mod._parse_retry_after(soon) <= 31
    assert fetch_mod._parse_retry_after("garbage") is None
    f = Fetcher(backoff_base_s=1, backoff_max_s=5)
    assert f._backoff(1, 100.0) == 5  # capped at backoff_max_s
    assert 4 <= f._backoff(3, None) <= 4.4
    assert f._backoff(10, None) == 5


def test_connection_refused(fetcher):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = get(fetcher, f"http://127.0.0.1:{port}/x.html")
    assert r.error_kind == "connection" and r.status is None and r.attempts == 3
    assert "after 3 attempts" in r.error


# -- redirects --------------------------------------------------------------------------------


def test_redirect_recorded(site, fetcher):
    site.put("/old", "", status=301, headers={"Location": "/mid?id=1&utm_source=x#top"})
    site.put("/mid?id=1", "", status=302, headers={"Location": site.url("/new.html")})
    site.put("/new.html", html_page(policy_text(300)))
    r = get(fetcher, site.url("/old"))
    assert r.ok
    assert r.redirects == [site.url("/old"), site.url("/mid?id=1")]
    assert r.final_url == site.url("/new.html")
    assert r.url == site.url("/old")


def test_redirect_loop(site, fetcher):
    site.put("/x", "", status=302, headers={"Location": "/y"})
    site.put("/y", "", status=302, headers={"Location": "/x"})
    r = get(fetcher, site.url("/x"))
    assert r.error_kind == "redirect" and r.error == "redirect loop"
    assert r.redirects == [site.url("/x"), site.url("/y")]
    assert site.hits["/x"] == 1 and site.hits["/y"] == 1


def test_too_many_redirects(site, fetcher):
    for i in range(12):
        site.put(f"/r{i}", "", status=302, headers={"Location": f"/r{i + 1}"})
    r = get(fetcher, site.url("/r0"))
    assert r.error_kind == "redirect" and "too many" in r.error
    assert len(r.redirects) == 10


def test_redirect_to_other_scheme(site, fetcher):
    site.put("/ftp", "", status=302, headers={"Location": "ftp://files.example.gov.cn/a.pdf"})
    r = get(fetcher, site.url("/ftp"))
    assert r.error_kind == "scheme"
    assert get(fetcher, "ftp://example.gov.cn/x").error_kind == "scheme"


def test_invalid_urls_are_errors(site, fetcher):
    assert get(fetcher, "http://[::1/x").error_kind == "scheme"
    assert get(fetcher, "http://example.gov.cn:99999/x").error_kind == "scheme"
    site.put("/bad", "", status=302, headers={"Location": "http://[zz/x"})
    r = get(fetcher, site.url("/bad"))
    assert r.error_kind == "redirect" and "invalid redirect target" in r.error


def test_private_address_blocked_by_default(site):
    site.put("/p.html", html_page("正文"))
    with Fetcher() as f:
        r = f.fetch_page(site.url("/p.html"), min_delay_s=0)
    assert r.error_kind == "blocked" and r.error == "blocked: 127.0.0.1 is a private address"
    assert site.requests == []  # not even robots.txt


def test_redirect_to_private_address_blocked(site, fetcher, monkeypatch):
    # Pretend the test server's 127.0.0.1 is a public address; "localhost" still resolves to loopback.
    real = fetch_mod._bad_address
    monkeypatch.setattr(fetch_mod, "_bad_address", lambda host: None if host == "127.0.0.1" else real(host))
    port = site.server.server_address[1]
    site.put("/go", "", status=302, headers={"Location": f"http://localhost:{port}/internal"})
    site.put("/internal", html_page("内部"))
    r = fetcher.fetch_page(site.url("/go"), min_delay_s=0)
    assert r.error_kind == "blocked" and "localhost" in r.error
    assert r.redirects == [site.url("/go")]
    assert site.hits["/go"] == 1 and site.hits["/internal"] == 0
    # The same redirect is followed when the source is allowed private addresses.
    assert get(fetcher, site.url("/go")).ok


def test_is_private_address():
    for host in (
        "127.0.0.1",
        "10.0.0.1",
        "192.168.1.20",
        "172.16.5.4",
        "169.254.169.254",
        "::1",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "[fe80::1]",
        "::ffff:10.0.0.1",
        "localhost",
    ):
        assert is_private_address(host), host
    for host in ("8.8.8.8", "202.96.134.133", "2400:3200::1"):
        assert not is_private_address(host), host


# -- robots and politeness --------------------------------------------------------------------


def test_robots_disallow(site, fetcher):
    site.put("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.put("/private/doc.html", html_page("秘密"))
    site.put("/public/doc.html", html_page("公开"))
    r = get(fetcher, site.url("/private/doc.html"))
    assert r.error_kind == "robots" and r.error == "robots.txt disallows"
    assert site.hits["/private/doc.html"] == 0
    assert get(fetcher, site.url("/public/doc.html")).ok
    assert site.hits["/robots.txt"] == 1  # cached per host
    with Fetcher(respect_robots=False) as f:
        assert get(f, site.url("/private/doc.html")).ok


def test_robots_group_for_our_agent(site, fetcher):
    # Our own group applies instead of "*", not in addition to it.
    site.put(
        "/robots.txt",
        "User-agent: OtherBot\nDisallow: /\n\nUser-agent: PolicyWatch\nDisallow: /nopw/\n\n"
        "User-agent: *\nDisallow: /others/\n",
        content_type="text/plain",
    )
    site.put("/nopw/doc.html", html_page("不给"))
    site.put("/others/doc.html", html_page("给"))
    assert get(fetcher, site.url("/nopw/doc.html")).error_kind == "robots"
    assert get(fetcher, site.url("/others/doc.html")).ok


def test_robots_wildcards_and_end_anchors(site, fetcher):
    # As search engines read them (RFC 9309 with * and $): the standard library's parser took both
    # literally and let every one of these through.
    site.put(
        "/robots.txt",
        "User-agent: *\nDisallow: /*.jsp\nDisallow: /print$\nAllow: /open/*.jsp\n",
        content_type="text/plain",
    )
    for path in ("/a/b.jsp", "/print", "/open/c.jsp", "/print/1.html", "/a/b.html"):
        site.put(path, html_page("页面"))
    assert get(fetcher, site.url("/a/b.jsp")).error_kind == "robots"
    assert get(fetcher, site.url("/print")).error_kind == "robots"
    assert get(fetcher, site.url("/open/c.jsp")).ok  # the longer Allow wins
    assert get(fetcher, site.url("/print/1.html")).ok  # `$`: only /print itself
    assert get(fetcher, site.url("/a/b.html")).ok
    assert site.hits["/a/b.jsp"] == site.hits["/print"] == 0


def test_robots_missing_or_broken_allows(site, fetcher):
    site.put("/a.html", html_page("正文"))
    assert get(fetcher, site.url("/a.html")).ok  # robots.txt 404
    other = LocalSite()
    try:
        other.put("/robots.txt", "down", status=503)
        other.put("/a.html", html_page("正文"))
        assert get(fetcher, other.url("/a.html")).ok
        assert other.hits["/robots.txt"] == 1  # not retried
    finally:
        other.close()


def test_politeness_spacing(site):
    site.put("/one.html", html_page("一"))
    site.put("/two.html", html_page("二"))
    with Fetcher(connect_timeout=1, read_timeout=2) as f:
        assert get(f, site.url("/one.html"), min_delay_s=0.3).ok
        assert get(f, site.url("/two.html"), min_delay_s=0.3).ok
    times = [r.at for r in site.requests]
    assert [r.path for r in site.requests] == ["/robots.txt", "/one.html", "/two.html"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.25, gaps


def test_politeness_across_threads(site):
    for i in range(4):
        site.put(f"/t{i}.html", html_page(f"第{i}篇"))
    results: list[FetchResult] = []
    with Fetcher(respect_robots=False, pool_size=4) as f:
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(get(f, site.url(f"/t{i}.html"), min_delay_s=0.15))
            )
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 4 and all(r.ok for r in results)
    times = sorted(r.at for r in site.requests)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1, gaps


def test_user_agent_on_every_request(site, fetcher):
    site.put("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    site.put("/ua.html", html_page("正文"))
    site.put("/r", "", status=302, headers={"Location": "/ua.html"})
    assert get(fetcher, site.url("/r")).ok
    assert len(site.requests) == 3
    assert all(r.headers.get("user-agent") == DEFAULT_USER_AGENT for r in site.requests)


# -- challenges, content checks, gone ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status"),
    [("rivers_412.html", 412), ("jsl_521.html", 521), ("waf_200.html", 200), ("cloudflare_503.html", 503)],
)
def test_challenge_pages_are_errors(site, fetcher, fixture, status):
    site.put("/c.html", challenge_fixture(fixture), status=status)
    r = get(fetcher, site.url("/c.html"))
    assert r.error_kind == "challenge", (r.error_kind, r.error)
    assert r.error.startswith(f"anti-bot challenge page (HTTP {status})")
    assert r.text is None and not r.ok and not r.gone
    assert site.hits["/c.html"] == 1  # a challenge is not retried


def test_rivers_challenge_with_200(site, fetcher):
    site.put("/c.html", challenge_fixture("rivers_412.html"), status=200)
    r = get(fetcher, site.url("/c.html"))
    assert r.error_kind == "challenge" and "$_ts" in r.error


def test_long_page_with_cookie_script_is_not_a_challenge(site, fetcher):
    script = (
        "<script>document.cookie='font_size=16;path=/';"
        "if(!document.cookie){location.reload();}window.location.href;</script>"
    )
    html = html_page(policy_text(5000), extra=script + "<p>如有问题，请开启JavaScript后访问。</p>")
    site.put("/policy.html", html)
    r = get(fetcher, site.url("/policy.html"))
    assert r.ok and r.text == html
    assert detect_challenge(200, {}, html) is None


def test_pdf_at_html_url(site, fetcher):
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\n" + b"0" * 5000
    site.put("/doc.html", pdf, content_type="application/pdf")
    r = get(fetcher, site.url("/doc.html"))
    assert r.error_kind == "not_html" and r.error == "not HTML: application/pdf"
    assert r.bytes == 0 and r.status == 200 and r.text is None and not r.ok
    site.put("/lie.html", pdf, content_type="text/html")  # served as HTML, sniffed as PDF
    r = get(fetcher, site.url("/lie.html"))
    assert r.error_kind == "not_html" and "application/pdf" in r.error


def test_empty_body(site, fetcher):
    site.put("/empty.html", b"")
    site.put("/blank.html", b" \r\n\t ")
    for path in ("/empty.html", "/blank.html"):
        r = get(fetcher, site.url(path))
        assert r.error_kind == "empty" and r.error == "empty body" and r.text is None


@pytest.mark.parametrize("status", [404, 410])
def test_gone(site, fetcher, status):
    site.put("/gone.html", "<html><body>页面不存在</body></html>", status=status)
    r = get(fetcher, site.url("/gone.html"))
    assert r.gone and r.status == status
    assert r.error is None and r.error_kind is None and r.text is None and not r.ok
    assert site.hits["/gone.html"] == 1


def test_other_4xx_is_http_error(site, fetcher):
    site.put("/forbidden.html", "<html><body>Forbidden</body></html>", status=403)
    r = get(fetcher, site.url("/forbidden.html"))
    assert r.error_kind == "http" and r.error == "HTTP 403 (blocked:403)" and not r.gone
    assert challenge_tag(r.error) == "blocked:403"
    assert site.hits["/forbidden.html"] == 1
    site.put("/waf403.html", "<html><body><h1>访问被拒绝</h1></body></html>", status=403)
    assert get(fetcher, site.url("/waf403.html")).error_kind == "challenge"
