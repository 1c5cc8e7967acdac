"""Hostile sites against the fetcher: nothing a site sends may stop a cycle, outlast the request
deadline, cross the private-address guard, pass undecodable bytes off as a page or collect
credentials meant for another origin.

Every server is real and on 127.0.0.1 (LocalSite, or a raw socket server for what http.server
cannot send). Names that are not loopback are answered by a fake resolver at the
socket.getaddrinfo level, and connections to anything but loopback are refused by the tests
themselves: no packet leaves this machine.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import ipaddress
import os
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import crawlers.fetch as fetch_mod
from crawlers import Fetcher, FetchResult, canonical_url, discover_links
from crawlers.encoding import decode_html
from crawlers.listings import ListingError, parse_feed, parse_html_listing, parse_json_listing
from policywatch.config import ConfigError, parse_config
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.pipeline import run_cycle
from storage.db import make_engine
from tests.support.rawserver import RawRequest, RawServer, drip
from tests.support.site import LocalSite

PARAS = corpus_paragraphs("004")
CHINESE = "关于加快数字经济发展的通知：推进数据要素市场化配置改革，朱镕基 喆 堃。"


def html(text: str = CHINESE, head: str = "", title: str = "通知") -> str:
    return f"<!DOCTYPE html><html><head>{head}<title>{title}</title></head><body><p>{text}</p></body></html>"


def get(f: Fetcher, url: str, **kwargs: object) -> FetchResult:
    kwargs.setdefault("allow_private", True)
    kwargs.setdefault("min_delay_s", 0)
    return f.fetch_page(url, **kwargs)  # type: ignore[arg-type]


def harmless(text: str) -> bool:
    """No character that can drive a terminal (C0/C1 controls, bidi and other format characters)."""
    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs") for ch in text)


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(connect_timeout=1, read_timeout=2, max_attempts=1, respect_robots=False)
    yield f
    f.close()


def cycle_config(*sources: str) -> str:
    return (
        "sources:\n"
        + "".join(sources)
        + """settings:
  max_attempts: 1
  connect_timeout_s: 1
  read_timeout_s: 2
"""
    )


def html_source(source_id: str, listing_url: str) -> str:
    return f"""  - id: {source_id}
    name: {source_id}
    listing_urls: ["{listing_url}"]
    link_pattern: "/content/"
    min_delay_s: 0
"""


# --- 1. charset labels that name Python-only codecs ------------------------------------------

PYTHON_ONLY = [
    "undefined",
    "punycode",
    "idna",
    "rot13",
    "rot_13",
    "base64",
    "zlib",
    "uu",
    "hex",
    "bz2",
    "quopri",
    "utf-7",
    "utf-32",
    "unicode_escape",
    "raw_unicode_escape",
    "mbcs",
    "cp1125",
    "hz",
]


@pytest.mark.parametrize("where", ["header", "meta"])
@pytest.mark.parametrize("label", PYTHON_ONLY)
def test_python_only_charset_label_is_unknown_and_detection_decides(
    site: LocalSite, fetcher: Fetcher, label: str, where: str
) -> None:
    page = html(head=f'<meta charset="{label}">' if where == "meta" else "")
    content_type = f"text/html; charset={label}" if where == "header" else "text/html"
    site.put("/p.html", page.encode("gb18030"), content_type=content_type)
    r = get(fetcher, site.url("/p.html"))
    assert r.ok, r.error
    assert r.text == page
    assert (r.encoding, r.encoding_source) == ("gb18030", "detected")


@pytest.mark.parametrize(
    ("label", "codec", "text"),
    [
        ("GB2312", "gb18030", CHINESE),  # GBK-only characters in a page labelled GB2312
        ("gbk", "gb18030", CHINESE),
        ("x-gbk", "gb18030", CHINESE),
        ("chinese", "gb18030", CHINESE),
        ("gb_2312-80", "gb18030", CHINESE),
        ("GB18030", "gb18030", CHINESE),
        ("big5", "big5hkscs", "行政院公告：數位經濟發展條例"),
        ("shift_jis", "cp932", "デジタル経済の推進について"),
        ("euc-jp", "euc_jp", "デジタル経済の推進について"),
        ("euc-kr", "cp949", "디지털 경제 발전에 관한 통지"),
        ("koi8-r", "koi8-r", "О развитии цифровой экономики"),
        ("windows-1251", "cp1251", "О развитии цифровой экономики"),
        ("iso-8859-2", "iso8859-2", "Oznámení o rozvoji digitální ekonomiky"),
        ("latin1", "cp1252", "Économie numérique – «avis»"),
    ],
)
def test_whatwg_labels_are_honoured(
    site: LocalSite, fetcher: Fetcher, label: str, codec: str, text: str
) -> None:
    page = html(text, title=text[:4])
    site.put("/p.html", page.encode(codec), content_type=f"text/html; charset={label}")
    r = get(fetcher, site.url("/p.html"))
    assert r.ok, r.error
    assert (r.text, r.encoding, r.encoding_source) == (page, codec, "header")


def test_x_user_defined_is_a_web_encoding() -> None:
    body = b"<html><body>\x80\xff</body></html>"
    text, codec, source, bad = decode_html(body, "x-user-defined")
    assert (text, codec, source, bad) == (
        "<html><body>\uf780\uf7ff</body></html>",
        "x-user-defined",
        "header",
        0,
    )


@pytest.mark.parametrize("override", ["rot13", "base64", "undefined", "idna", "utf-7"])
def test_python_only_encoding_override_is_a_fetch_error(
    site: LocalSite, fetcher: Fetcher, override: str
) -> None:
    site.put("/p.html", html().encode("utf-8"))
    r = get(fetcher, site.url("/p.html"), encoding=override)
    assert r.error_kind == "encoding" and r.text is None
    assert override in r.error


def test_a_python_only_encoding_override_is_refused(site: LocalSite) -> None:
    """The configuration refuses it at load (tests/test_config_hostile.py); a Fetcher given one
    anyway answers with that page's error instead of raising."""
    site.put("/content/a.html", gov_cn_page("关于加快数字经济发展的通知", PARAS[1:20]))
    with pytest.raises(ConfigError) as refused:
        parse_config("sources:\n" + html_source("odd", site.url("/list/")) + "    encoding: rot13\n")
    assert refused.value.key == "sources[0].encoding"
    with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=1, read_timeout=2) as f:
        result = f.fetch_page(site.url("/content/a.html"), allow_private=True, encoding="rot13")
    assert result.error is not None and "not a web encoding" in result.error


def test_hostile_charset_labels_do_not_stop_a_cycle(site: LocalSite, sqlite_url: str) -> None:
    listing = (
        '<html><body><a href="/content/a.html">通知甲</a><a href="/content/b.html">通知乙</a></body></html>'
    )
    site.put("/list/", listing.encode("gb18030"), content_type="text/html; charset=undefined")
    page_a = gov_cn_page("关于加快数字经济发展的通知", PARAS[1:20])
    site.put("/content/a.html", page_a.encode("utf-8"), content_type="text/html; charset=punycode")
    page_b = gov_cn_page("关于数据要素市场化配置的意见", PARAS[20:40]).replace(
        "<head>", '<head><meta charset="rot13">', 1
    )
    site.put("/content/b.html", page_b.encode("gb18030"), content_type="text/html")
    engine = make_engine(sqlite_url)
    try:
        summary = run_cycle(parse_config(cycle_config(html_source("labels", site.url("/list/")))), engine)
    finally:
        engine.dispose()
    assert summary.errors == 0, summary.failures
    assert summary.baseline == 2


# --- 2. nesting, IDN hosts, exceptions ----------------------------------------------------------


def test_deeply_nested_json_listing_is_that_listings_error(site: LocalSite, sqlite_url: str) -> None:
    site.put("/deep.json", "[" * 200_000 + "]" * 200_000, content_type="application/json")
    site.put("/list/", '<a href="/content/a.html">通知</a>')
    site.put("/content/a.html", gov_cn_page("关于加快数字经济发展的通知", PARAS[1:20]))
    deep = f"""  - id: deep
    name: deep
    listings:
      - url: "{site.url("/deep.json")}"
        kind: json
    link_pattern: "/content/"
    min_delay_s: 0
"""
    engine = make_engine(sqlite_url)
    try:
        summary = run_cycle(
            parse_config(cycle_config(deep, html_source("healthy", site.url("/list/")))), engine
        )
    finally:
        engine.dispose()
    assert summary.baseline == 1  # the other source went on
    [failure] = summary.failures
    assert failure["url"] == site.url("/deep.json")
    assert "nested too deeply" in failure["error"]


def test_deeply_nested_json_is_a_listing_error() -> None:
    with pytest.raises(ListingError, match="nested too deeply"):
        parse_json_listing("[" * 200_000 + "]" * 200_000, "http://a.gov.cn/")
    with pytest.raises(ListingError, match="nested too deeply"):
        parse_json_listing("cb(" + '{"a":' * 200_000 + "1" + "}" * 200_000 + ");", "http://a.gov.cn/")


def _deep_feed(depth: int) -> str:
    deep = "<x>" * depth + "</x>" * depth
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss><channel>'
        "<item><link>http://a.gov.cn/content/1.html</link><title>一</title></item>"
        f"<item><description>{deep}</description></item>"
        "<item><link>http://a.gov.cn/content/2.html</link><title>二</title></item>"
        "</channel></rss>"
    )


def test_deeply_nested_feed_is_a_listing_error_not_a_lost_item(site: LocalSite, fetcher: Fetcher) -> None:
    site.put("/feed.xml", _deep_feed(100_000), content_type="application/rss+xml")
    r = get(fetcher, site.url("/feed.xml"), feed=True)
    assert r.ok, r.error
    with pytest.raises(ListingError, match="nested too deeply"):
        parse_feed(r.text or "", r.final_url)
    # A feed of ordinary depth still gives every item.
    links = parse_feed(_deep_feed(20), "http://a.gov.cn/")
    assert [link.url for link in links] == [
        "http://a.gov.cn/content/1.html",
        "http://a.gov.cn/content/2.html",
    ]


def test_deeply_nested_html_listing_is_a_listing_error() -> None:
    import re

    page = (
        "<html><body><a href='/content/1.html'>1</a>"
        + "<div>" * 100_000
        + "</div>" * 100_000
        + "<a href='/content/2.html'>2</a></body></html>"
    )
    with pytest.raises(ListingError, match="nested too deeply"):
        parse_html_listing(page, "http://a.gov.cn/", re.compile("/content/"))


def test_idn_hosts_are_canonicalised_to_punycode() -> None:
    assert canonical_url("http://政府.中国/x.html") == "http://xn--mxtq1m.xn--fiqs8s/x.html"
    assert canonical_url("HTTP://EXÄMPLE.com:80/") == "http://xn--exmple-cua.com/"
    assert canonical_url("http://政府。中国/") == "http://xn--mxtq1m.xn--fiqs8s/"
    page = '<a href="http://政府.中国/content/1.html">1</a><a href="http://a☃b.com/content/2.html">2</a>'
    assert discover_links(page, "http://a.gov.cn/", "/content/") == [
        "http://xn--mxtq1m.xn--fiqs8s/content/1.html"
    ]
    for bad in ("http://a☃b.com/", "http://exa mple.com/", "http://a%00b.com/", "http://a<b>.com/"):
        with pytest.raises(ValueError):
            canonical_url(bad)


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Refuse every connection that is not to loopback (recorded), and every DNS lookup of a name
    that is not loopback's: nothing leaves the machine, whatever the code under test does."""
    attempts: list[tuple[str, int]] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        if isinstance(address, tuple):
            attempts.append((str(host), int(address[1])))
        if not ipaddress.ip_address(str(host).split("%")[0]).is_loopback:
            raise ConnectionRefusedError(111, f"test: no traffic to {host}")
        real_connect(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name != "localhost":
            try:  # numeric spellings (2130706433, 0x7f.1, ::1) are read without DNS
                real_getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)  # type: ignore[arg-type]
            except socket.gaierror:
                raise socket.gaierror(socket.EAI_NONAME, f"test: no DNS for {name}") from None
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Callable[[], list[str]]]) -> list[str]:
    """Answer getaddrinfo for the names in `answers` (each call asks its function again); the
    other names go to the getaddrinfo in place (loopback_only's). Returns the names asked, in order."""
    asked: list[str] = []
    inner = socket.getaddrinfo

    def getaddrinfo(host: object, port: object = None, *args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in answers:
            asked.append(name)
            out = []
            for ip in answers[name]():
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                sockaddr = (ip, int(port or 0), 0, 0) if family == socket.AF_INET6 else (ip, int(port or 0))
                out.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
            if not out:
                raise socket.gaierror(socket.EAI_NONAME, f"test: {name} does not resolve")
            return out
        return inner(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def forwarding_proxy() -> RawServer:
    """An HTTP proxy that answers every request itself with a small page."""

    def answer(conn: socket.socket, request: RawRequest, stopping: threading.Event) -> None:
        body = b"<html><body><p>proxied</p></body></html>"
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return RawServer(answer)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch, loopback_only: list[tuple[str, int]]) -> Iterator[RawServer]:
    server = forwarding_proxy()
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url(""))
    monkeypatch.setenv("http_proxy", server.url(""))
    yield server
    server.close()


def test_idn_link_behind_a_proxy_is_fetched_by_its_punycode_name(proxy: RawServer) -> None:
    with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=1, read_timeout=2) as f:
        r = f.fetch_page("http://政府.中国/content/1.html", min_delay_s=0)
    assert r.ok, r.error
    assert r.final_url == "http://xn--mxtq1m.xn--fiqs8s/content/1.html"
    [request] = proxy.requests
    assert request.line == "GET http://xn--mxtq1m.xn--fiqs8s/content/1.html HTTP/1.1"
    assert request.header("Host") == "xn--mxtq1m.xn--fiqs8s"


def test_raw_bytes_in_a_redirect_host_behind_a_proxy_are_a_page_error(
    proxy: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(conn: socket.socket, request: RawRequest, stopping: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: http://a\xff\x00b\xfe.example/x\r\nContent-Length: 0\r\n\r\n"
        )

    origin = RawServer(answer)
    try:
        # The origin is loopback and not proxied: the redirect comes from the origin itself.
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=1, read_timeout=2) as f:
            r = f.fetch_page(origin.url("/go"), min_delay_s=0, allow_private=True)
    finally:
        origin.close()
    assert r.error_kind == "redirect" and r.text is None, r.error
    assert harmless(r.error or "")
    assert proxy.requests == []


# --- 3. the request deadline covers the status line and the headers -----------------------------


def _deadline_fetcher() -> Fetcher:
    # total deadline: connect 0.2 + 3 x read 0.4 = 1.4 s; every byte comes well within the read timeout
    return Fetcher(connect_timeout=0.2, read_timeout=0.4, max_attempts=1, respect_robots=False)


def _drip_status(conn: socket.socket, request: RawRequest, stopping: threading.Event) -> None:
    drip(conn, b"HTTP/1.1 200 OK" + b" " * 150 + b"\r\n", 0.1, stopping)


def _drip_headers(conn: socket.socket, request: RawRequest, stopping: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
    drip(conn, b"X-Pad: " + b"a" * 150 + b"\r\n\r\n", 0.1, stopping)


def _drip_chunk_sizes(conn: socket.socket, request: RawRequest, stopping: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
    drip(conn, b"0" * 150 + b"5\r\n<html\r\n0\r\n\r\n", 0.1, stopping)


@pytest.mark.parametrize(
    "answer", [_drip_status, _drip_headers, _drip_chunk_sizes], ids=["status", "headers", "chunk-size"]
)
def test_a_dripping_answer_ends_at_the_request_deadline(answer: Callable[..., None]) -> None:
    server = RawServer(answer)
    try:
        with _deadline_fetcher() as f:
            deadline = f.total_timeout_s
            t0 = time.monotonic()
            r = get(f, server.url("/drip.html"))
            took = time.monotonic() - t0
    finally:
        server.close()
    assert took < 3 * deadline, (took, r.error)
    assert r.error_kind == "timeout" and r.text is None, r.error
    assert "deadline" in (r.error or "") and "read timeout" in (r.error or "")


def test_the_deadline_does_not_touch_a_healthy_keep_alive_connection(site: LocalSite) -> None:
    site.put("/p.html", html())
    with _deadline_fetcher() as f:
        first = get(f, site.url("/p.html"))
        time.sleep(1.6)  # past the first request's deadline: the pooled connection is used again
        second = get(f, site.url("/p.html"))
    assert first.ok and second.ok, (first.error, second.error)
    assert len({r.peer for r in site.requests}) == 1


# --- 4. the private-address guard -----------------------------------------------------------------


def test_dns_rebinding_cannot_reach_a_private_address(
    site: LocalSite, loopback_only: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    site.put("/secret.html", html("内部资料"))
    port = site.server.server_address[1]
    answers = iter([["93.184.216.34"]])
    asked = fake_dns(monkeypatch, {"rebind.test": lambda: next(answers, ["127.0.0.1"])})
    with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=0.5, read_timeout=1) as f:
        r = f.fetch_page(f"http://rebind.test:{port}/secret.html", min_delay_s=0)
    assert r.text is None and r.error_kind == "connection", r.error
    assert site.requests == []  # the internal page was not fetched
    assert asked == ["rebind.test"]  # resolved once...
    assert loopback_only == [("93.184.216.34", port)]  # ...and connected to exactly the checked address


def test_a_name_that_does_not_resolve_fails_closed(
    site: LocalSite, loopback_only: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    site.put("/secret.html", html("内部资料"))
    port = site.server.server_address[1]
    answers = iter([[]])  # the guard's lookup fails; the next one would say loopback
    fake_dns(monkeypatch, {"flaky.test": lambda: next(answers, ["127.0.0.1"]), "nowhere.test": list})
    with Fetcher(respect_robots=False, max_attempts=2, backoff_base_s=0.01, connect_timeout=0.5) as f:
        flaky = f.fetch_page(f"http://flaky.test:{port}/secret.html", min_delay_s=0)
        nowhere = f.fetch_page(f"http://nowhere.test:{port}/secret.html", min_delay_s=0)
    # Only an address the guard checked is connected to: the later answer is checked too.
    assert flaky.text is None and flaky.error_kind == "blocked", flaky.error
    assert site.requests == []
    # A name that never resolves reaches nothing; like any DNS failure it is retried.
    assert nowhere.error_kind == "connection" and nowhere.attempts == 2, nowhere.error
    assert nowhere.error == "connection failed: nowhere.test does not resolve after 2 attempts"
    assert loopback_only == []


def test_a_redirect_to_a_rebinding_name_is_checked(
    site: LocalSite, loopback_only: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = site.server.server_address[1]
    site.put("/secret.html", html("内部资料"))
    answers = iter([["93.184.216.34"]])
    fake_dns(monkeypatch, {"rebind.test": lambda: next(answers, ["127.0.0.1"])})
    real = fetch_mod._bad_address
    # The test server's own literal address counts as public; what it redirects to is checked.
    monkeypatch.setattr(fetch_mod, "_bad_address", lambda host: None if host == "127.0.0.1" else real(host))
    site.put("/go", "", status=302, headers={"Location": f"http://rebind.test:{port}/secret.html"})
    with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=0.5, read_timeout=1) as f:
        r = f.fetch_page(site.url("/go"), min_delay_s=0)
    assert r.text is None and r.redirects == [site.url("/go")], r.error
    assert site.hits["/go"] == 1 and site.hits["/secret.html"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/computeMetadata/v1/",
        "http://instance-data.ec2.internal/latest/meta-data/",
        "http://printer.local/",
        "http://app.localhost/",
        "http://localhost/",
        "http://intranet/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://[fd00::1]/",
        "http://2130706433/",
    ],
)
def test_private_names_are_not_forwarded_to_a_proxy(proxy: RawServer, url: str) -> None:
    with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=1, read_timeout=2) as f:
        r = f.fetch_page(url, min_delay_s=0)
        assert r.error_kind == "blocked" and r.text is None, r.error
        assert proxy.requests == []
        # A source that is allowed private addresses still reaches them through its proxy.
        assert f.fetch_page(url, min_delay_s=0, allow_private=True).ok
    assert len(proxy.requests) == 1


def test_public_names_are_pinned_resolved_once_and_keep_their_host_header(
    site: LocalSite, loopback_only: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = site.server.server_address[1]
    for i in range(5):
        site.put(f"/content/{i}.html", html(f"第{i}条"))
    asked = fake_dns(monkeypatch, {"docs.example": lambda: ["127.0.0.1"]})
    real = fetch_mod._public_ip
    monkeypatch.setattr(
        fetch_mod, "_public_ip", lambda ip: ip == ipaddress.ip_address("127.0.0.1") or real(ip)
    )
    with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=1, read_timeout=2) as f:
        results = [
            f.fetch_page(f"http://docs.example:{port}/content/{i}.html", min_delay_s=0) for i in range(5)
        ]
    assert all(r.ok for r in results), [r.error for r in results]
    assert asked == ["docs.example"]  # one lookup for five pages (and their one connection)
    assert {r.headers["host"] for r in site.requests} == {f"docs.example:{port}"}
    assert len({r.peer for r in site.requests}) == 1


def _tls_files(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a certificate for `name` signed by it (cert, key, ca) in `tmp`."""
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PolicyWatch test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "cert.pem", tmp / "key.pem", tmp / "ca.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


class TlsServer:
    """HTTPS on 127.0.0.1 with a certificate for `name`: /p.html answers, anything else drips."""

    def __init__(self, tmp: Path, name: str) -> None:
        cert, key, self.ca = _tls_files(tmp, name)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sni: list[str | None] = []
        self.context.sni_callback = self._sni  # type: ignore[assignment]
        self.hosts: list[str | None] = []
        self.page = html("加密页面").encode()
        self.stopping = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _sni(self, sock: object, name: str | None, context: object) -> None:
        self.sni.append(name)

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                request = RawRequest(head)
                self.hosts.append(request.header("Host"))
                if request.line.startswith("GET /p.html "):
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                        + f"Content-Length: {len(self.page)}\r\n\r\n".encode()
                        + self.page
                    )
                else:
                    drip(conn, b"HTTP/1.1 200 OK" + b" " * 100 + b"\r\n", 0.1, self.stopping)
        except OSError:
            pass  # a client that refused our certificate, or gave up

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.sock.close()


def test_a_pinned_https_connection_verifies_the_name_and_keeps_the_deadline(
    tmp_path: Path, loopback_only: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = TlsServer(tmp_path, "docs.example")
    fake_dns(monkeypatch, {"docs.example": lambda: ["127.0.0.1"], "other.example": lambda: ["127.0.0.1"]})
    real = fetch_mod._public_ip
    monkeypatch.setattr(
        fetch_mod, "_public_ip", lambda ip: ip == ipaddress.ip_address("127.0.0.1") or real(ip)
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca))
    port = server.port
    try:
        with Fetcher(respect_robots=False, max_attempts=1, connect_timeout=0.2, read_timeout=0.4) as f:
            ok = f.fetch_page(f"https://docs.example:{port}/p.html", min_delay_s=0)
            wrong_name = f.fetch_page(f"https://other.example:{port}/p.html", min_delay_s=0)
            t0 = time.monotonic()
            dripped = f.fetch_page(f"https://docs.example:{port}/drip.html", min_delay_s=0)
            took = time.monotonic() - t0
            deadline = f.total_timeout_s
    finally:
        server.close()
    assert ok.ok and ok.text == server.page.decode(), ok.error
    assert wrong_name.error_kind == "connection" and wrong_name.text is None
    assert "certificate" in (wrong_name.error or "").lower() or "hostname" in (wrong_name.error or "").lower()
    assert server.sni[:2] == ["docs.example", "other.example"]
    assert server.hosts[0] == f"docs.example:{port}"
    assert dripped.error_kind == "timeout" and "deadline" in (dripped.error or ""), dripped.error
    assert took < 3 * deadline, took


# --- 5. content encodings and credentials ---------------------------------------------------------


def _decoded_by_urllib3(coding: str) -> bool:
    import urllib3.response

    return coding in urllib3.response.HTTPResponse.CONTENT_DECODERS


@pytest.mark.parametrize("coding", ["br", "zstd", "x-snappy", "gzip, br", "compress"])
def test_an_undecodable_content_encoding_is_a_fetch_error(
    site: LocalSite, fetcher: Fetcher, coding: str
) -> None:
    last = coding.split(",")[-1].strip()
    if _decoded_by_urllib3(last):
        pytest.skip(f"{last} is decoded here (its library is installed)")
    binary = os.urandom(10_000)
    site.put("/p.html", binary, headers={"Content-Encoding": coding})
    r = get(fetcher, site.url("/p.html"))
    assert r.error_kind == "content_encoding" and r.text is None, (r.error_kind, r.error)
    assert last in (r.error or "")


def test_gzip_is_still_decoded(site: LocalSite, fetcher: Fetcher) -> None:
    page = html()
    site.put("/p.html", gzip.compress(page.encode()), headers={"Content-Encoding": "gzip"})
    r = get(fetcher, site.url("/p.html"))
    assert r.ok and r.text == page, r.error


def test_credentials_go_only_to_their_own_origin(site: LocalSite) -> None:
    other = LocalSite()
    try:
        a, b = site, other
        b_port = b.server.server_address[1]
        a.put(
            "/list/",
            '<a href="/content/1.html">1</a>'
            f'<a href="http://127.0.0.1:{b_port}/content/2.html">2</a>'
            f'<a href="http://thief:pw@127.0.0.1:{b_port}/content/3.html">3</a>'
            '<a href="/go">go</a>',
        )
        a.put("/content/1.html", html("一"))
        a.put("/go", "", status=302, headers={"Location": f"http://127.0.0.1:{b_port}/content/4.html"})
        for i in (2, 3, 4):
            b.put(f"/content/{i}.html", html(str(i)))
        listing_url = a.base_url.replace("http://", "http://editor:s3cr%40t@") + "/list/"
        with Fetcher(respect_robots=False, max_attempts=1) as f:
            listing = get(f, listing_url)
            assert listing.ok, listing.error
            links = discover_links(listing.text or "", listing.final_url, "/content/|/go")
            results = [get(f, link) for link in links]
        assert all(r.ok for r in results), [r.error for r in results]
        secret = "Basic " + base64.b64encode(b"editor:s3cr@t").decode()
        for result in (listing, *results):
            for url in (result.url, result.final_url, *result.redirects):
                assert "s3cr" not in url and "@" not in url, url
        assert links == [
            a.url("/content/1.html"),
            b.url("/content/2.html"),
            b.url("/content/3.html"),
            a.url("/go"),
        ]
        assert {r.path: r.headers.get("authorization") for r in a.requests} == {
            "/list/": secret,
            "/content/1.html": secret,
            "/go": secret,
        }
        assert [r.headers.get("authorization") for r in b.requests] == [None, None, None]
        assert {r.path for r in b.requests} == {"/content/2.html", "/content/3.html", "/content/4.html"}
    finally:
        other.close()


def test_hostile_text_in_a_fetch_error_is_neutralised(fetcher: Fetcher) -> None:
    def answer(conn: socket.socket, request: RawRequest, stopping: threading.Event) -> None:
        if request.line.startswith("GET /type"):
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-\x1b[2J\x1b]0\x07\x9b31m\xe2\x80\xaeevil; x=1\r\n"
                b"Content-Length: 2\r\n\r\nhi"
            )
        elif request.line.startswith("GET /status"):
            conn.sendall(b"\x1b[31mHTTP/1.1 200 OK\r\n\r\n")
        else:
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: http://[\x1b[2J\x9b/x\r\nContent-Length: 0\r\n\r\n"
            )

    server = RawServer(answer)
    try:
        results = [get(fetcher, server.url(path)) for path in ("/type", "/status", "/redirect")]
    finally:
        server.close()
    for r in results:
        assert r.error and harmless(r.error), repr(r.error)
    assert "\\x1b" in (results[0].error or "") and "\\x9b" in (results[0].error or "")
    assert results[0].error_kind == "not_html" and results[2].error_kind == "redirect"


def test_a_failing_listing_url_is_reported_without_its_credentials(site: LocalSite, sqlite_url: str) -> None:
    site.put("/list/", "gone", status=404)
    listing = site.url("/list/").replace("http://", "http://reader:s3cret@")
    config = parse_config(cycle_config(html_source("private", listing)))
    engine = make_engine(sqlite_url)
    try:
        summary = run_cycle(config, engine)
    finally:
        engine.dispose()
    assert summary.errors >= 1
    assert all("s3cret" not in f["url"] and "s3cret" not in f["error"] for f in summary.failures)
