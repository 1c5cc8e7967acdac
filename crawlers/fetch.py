"""Polite, bounded page fetching for policy pages.

`Fetcher.fetch_page` never raises for network or HTTP trouble: every outcome is a `FetchResult`.
It keeps one requests.Session per host, spaces requests to a host by `min_delay_s`, honours
robots.txt, retries transient failures with backoff, follows redirects by hand (checking every
hop's scheme, address and robots rules), caps body size and total read time, decodes GBK/GB2312
pages right, and refuses anti-bot challenge pages as content.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import os
import random
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib import robotparser
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar

from .challenge import detect_challenge
from .discover import canonical_url
from .encoding import decode_html, normalize_charset

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchResult",
    "Fetcher",
    "decode_html",
    "detect_challenge",
    "is_private_address",
]

DEFAULT_USER_AGENT = "PolicyWatch/0.1 (+https://github.com/policywatch; policy change monitor)"

MAX_REDIRECTS = 10
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_HTML_TYPES = {"text/html", "application/xhtml+xml", "text/plain"}
# What a listing feed (JSON, RSS, Atom) may be served as: sites label them every which way.
_FEED_TYPES = {
    "application/json",
    "text/json",
    "application/javascript",
    "text/javascript",
    "application/x-javascript",
    "application/xml",
    "text/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "text/html",
    "text/plain",
    "application/octet-stream",
    "",
}
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([-\w.:]+)["']""", re.I)
_SNIFF_TYPES = {"", "application/octet-stream"}
# Bodies of error answers are read only this far (enough to recognise a challenge page).
_ERROR_BODY_CAP = 512 * 1024
_ROBOTS_CAP = 512 * 1024
_DRAIN_CAP = 64 * 1024  # a redirect's or a 304's body, read only to keep the connection
_ROBOTS_TTL_S = 6 * 3600
_MAX_CRAWL_DELAY_S = 30.0
_HTML_SNIFF_RE = re.compile(
    rb"^\s*<(?:!doctype\s+html|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|br|p|meta|!--)[\s>/]",
    re.I,
)
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0", "application/msword"),
)


@dataclass
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # canonical URL of the last hop
    status: int | None = None  # last HTTP status; None when no response
    not_modified: bool = False  # 304 to a conditional GET
    gone: bool = False  # 404/410: the document is confirmed gone (not an error)
    error: str | None = None  # human reason when this is a fetch error
    # timeout|connection|http|challenge|too_large|robots|blocked|not_html|empty|redirect|scheme|truncated
    error_kind: str | None = None
    text: str | None = None  # decoded HTML when status 200 and no error
    encoding: str | None = None
    encoding_source: str | None = None  # header|meta|detected|override
    replacement_chars: int = 0
    etag: str | None = None
    last_modified: str | None = None
    redirects: list[str] = field(default_factory=list)  # URLs that answered with a redirect, in order
    content_type: str | None = None
    bytes: int = 0  # body bytes read (after content decoding)
    elapsed_s: float = 0.0
    attempts: int = 0  # requests made for the last hop (1 + retries)
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.text is not None and self.error is None


class _Failure(Exception):
    """A fetch error: ends the fetch with `kind` and `message`."""

    def __init__(
        self, kind: str, message: str, *, retryable: bool = False, bytes_read: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.bytes_read = bytes_read


class _Session(requests.Session):
    """A Session that never resolves redirects itself: even with allow_redirects=False, requests
    would parse the next Location (raising ValueError on a malformed one). Fetcher follows by hand."""

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return iter(())


def _get(
    session: requests.Session, url: str, headers: dict[str, str], timeout: tuple[float, float]
) -> requests.Response:
    """GET `url` on `session`, streamed, redirects not followed.

    Without proxies from the environment, the request is prepared and handed to the session's
    adapter directly: Session.request's merging of settings (typing-Protocol isinstance checks,
    eight a request in requests 2.34 on Python 3.11) cost ~0.2 ms of a ~0.9 ms request. Cookies are
    sent and kept as the session would.
    """
    if session.trust_env:  # proxies, no_proxy, .netrc from the environment: requests' full path
        return session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False)
    prepared = requests.PreparedRequest()
    prepared.prepare(method="GET", url=url, headers={**session.headers, **headers}, cookies=session.cookies)
    response = session.get_adapter(url).send(
        prepared, stream=True, timeout=timeout, verify=session.verify, cert=session.cert, proxies={}
    )
    extract_cookies_to_jar(session.cookies, prepared, response.raw)
    return response


def _bad_address(host: str) -> str | None:
    """The first non-public address `host` is or resolves to, else None (also when it does not resolve)."""
    host = host.strip("[]")
    try:
        addresses = [ipaddress.ip_address(host.split("%", 1)[0])]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        addresses = []
        for info in infos:
            try:
                addresses.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
            except ValueError:
                continue
    for ip in addresses:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if (
            ip.is_loopback
            or ip.is_private
            or ip.is_link_local
            or ip.is_reserved
            or ip.is_unspecified
            or ip.is_multicast
            or not ip.is_global
        ):
            return str(ip)
    return None


def is_private_address(host: str) -> bool:
    """True if `host` (a name or an IP literal) is or resolves to any non-public address."""
    return _bad_address(host) is not None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _content_type(headers: Any) -> tuple[str | None, str, str | None]:
    """(raw header, lowercased media type, charset parameter)."""
    raw = headers.get("Content-Type")
    if not raw:
        return None, "", None
    parts = raw.split(";")
    media = parts[0].strip().lower()
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return raw, media, charset


_HTML_OPEN_RE = re.compile(rb"<(?:html|body)[\s>]", re.I)
_HTML_CLOSE_RE = re.compile(rb"</(?:html|body)\s*>", re.I)


def _close_delimited(headers: Any) -> bool:
    """The body ends where the server closed the connection (no length, not chunked)."""
    return "Content-Length" not in headers and "chunked" not in headers.get("Transfer-Encoding", "").lower()


def _unclosed_html(body: bytes) -> bool:
    """An HTML document that opens <html>/<body> and never closes either: it was cut short."""
    return bool(_HTML_OPEN_RE.search(body[:8192])) and not _HTML_CLOSE_RE.search(body)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    m = re.search(r"\] ([^'\")]+)", text)  # "[Errno 111] Connection refused" inside urllib3's wrapping
    return m.group(1).strip() if m else (text[:200] or type(exc).__name__)


class Fetcher:
    """Fetch policy pages politely and safely. Thread-safe; use as a context manager or call close()."""

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        connect_timeout: float = 5,
        read_timeout: float = 20,
        max_attempts: int = 3,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_bytes: int = 10 * 1024 * 1024,
        respect_robots: bool = True,
        pool_size: int = 8,
        delay_scale: float = 1.0,
    ) -> None:
        self.user_agent = user_agent
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_bytes = max_bytes
        self.respect_robots = respect_robots
        self.pool_size = pool_size
        # N fetchers in N processes sharing one host keep its politeness by each waiting N times as long.
        self.delay_scale = max(1.0, delay_scale)
        # Total time one request may take, headers to last byte: a server that drips bytes just
        # faster than the read timeout must not hold a worker forever.
        self.total_timeout_s = connect_timeout + read_timeout * 3
        self._lock = threading.Lock()
        self._sessions: dict[str, requests.Session] = {}
        self._next_allowed: dict[str, float] = {}
        self._robots: dict[str, tuple[robotparser.RobotFileParser | None, float]] = {}
        self._robots_locks: dict[str, threading.Lock] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per-host state ----------------------------------------------------------------------

    def _session(self, netloc: str) -> requests.Session:
        with self._lock:
            session = self._sessions.get(netloc)
            if session is None:
                session = _Session()
                adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.pool_size, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                if not urllib.request.getproxies():
                    # No proxy in the environment: then requests' per-request environment lookup
                    # (proxies, no_proxy, .netrc: ~1 ms of a 2.5 ms fetch) finds nothing anyway.
                    session.trust_env = False
                    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                    if bundle:
                        session.verify = bundle
                session.headers.update(
                    {
                        "User-Agent": self.user_agent,
                        "Accept": "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.5",
                        "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
                    }
                )
                self._sessions[netloc] = session
            return session

    def _wait_turn(self, host: str, min_delay_s: float) -> None:
        """Reserve the next slot for `host`, at least `min_delay_s` after the previous one, and sleep until it."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_allowed.get(host, 0.0))
            self._next_allowed[host] = slot + max(0.0, min_delay_s) * self.delay_scale
        if slot > now:
            time.sleep(slot - now)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_base_s * 2 ** (attempt - 1), self.backoff_max_s)
        delay += random.uniform(0, delay * 0.1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.backoff_max_s)

    # -- robots.txt --------------------------------------------------------------------------

    def _robots_for(
        self, origin: str, min_delay_s: float, allow_private: bool
    ) -> robotparser.RobotFileParser | None:
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            cached = self._robots.get(origin)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            parser = self._load_robots(origin, min_delay_s, allow_private)
            self._robots[origin] = (parser, time.monotonic() + _ROBOTS_TTL_S)
            return parser

    def _load_robots(
        self, origin: str, min_delay_s: float, allow_private: bool
    ) -> robotparser.RobotFileParser | None:
        """Parsed robots.txt, or None (allow all) when it is missing, broken or unreachable."""
        url = origin + "/robots.txt"
        for _ in range(5):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return None
            if not allow_private and is_private_address(parts.hostname):
                return None
            self._wait_turn(parts.hostname, min_delay_s)
            try:
                resp = self._session(parts.netloc).get(
                    url,
                    timeout=(self.connect_timeout, self.read_timeout),
                    stream=True,
                    allow_redirects=False,
                )
            except requests.RequestException:
                return None
            try:
                if resp.status_code in _REDIRECT_STATUSES:
                    target = resp.headers.get("Location")
                    if not target:
                        return None
                    url = urljoin(url, target)
                    continue
                if resp.status_code != 200:
                    return None  # 4xx: no rules; 5xx: treated as allow all too
                try:
                    body = self._read_body(resp, time.monotonic() + self.total_timeout_s, _ROBOTS_CAP)
                except _Failure:
                    return None
            finally:
                resp.close()
            parser = robotparser.RobotFileParser(url)
            parser.parse(body.decode("utf-8", errors="replace").splitlines())
            return parser
        return None

    # -- one request -------------------------------------------------------------------------

    def _read_body(self, resp: requests.Response, deadline: float, cap: int) -> bytes:
        """Stream the body; _Failure past `cap` bytes, on a read timeout or past `deadline`."""
        raw = resp.raw
        read = getattr(raw, "read1", None) or raw.read
        buf = bytearray()
        try:
            while True:
                if time.monotonic() > deadline:
                    raise _Failure("timeout", "read timeout (body too slow)", retryable=True)
                chunk = read(65536, decode_content=True)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > cap:
                    raise _Failure("too_large", f"body over {cap} bytes", bytes_read=len(buf))
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            raise _Failure("timeout", "read timeout", retryable=True) from exc
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError, OSError) as exc:
            raise _Failure("connection", f"connection broken: {_describe(exc)}", retryable=True) from exc
        return bytes(buf)

    def _request(
        self, url: str, headers: dict[str, str], min_delay_s: float, result: FetchResult, feed: bool = False
    ) -> tuple[requests.Response, bytes | None]:
        """GET `url` with retries. Returns the response and its body (None for 3xx/304/non-HTML 200)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        session = self._session(parts.netloc)
        result.attempts = 0
        for attempt in range(1, self.max_attempts + 1):
            result.attempts = attempt
            result.status = None
            last = attempt == self.max_attempts
            self._wait_turn(host, min_delay_s)
            deadline = time.monotonic() + self.total_timeout_s
            retry_after: float | None = None
            try:
                try:
                    resp = _get(session, url, headers, (self.connect_timeout, self.read_timeout))
                except requests.ConnectTimeout as exc:
                    raise _Failure("timeout", "connect timeout", retryable=True) from exc
                except requests.Timeout as exc:
                    raise _Failure("timeout", "read timeout", retryable=True) from exc
                except requests.ConnectionError as exc:
                    raise _Failure(
                        "connection", f"connection failed: {_describe(exc)}", retryable=True
                    ) from exc
                except requests.RequestException as exc:
                    raise _Failure("connection", f"request failed: {_describe(exc)}") from exc
                try:
                    body = self._response_body(resp, deadline, feed)
                except BaseException:
                    resp.close()
                    raise
                status = resp.status_code
                result.status = status
                if status >= 500 or status == 429:
                    reason = detect_challenge(status, resp.headers, self._peek_text(resp, body))
                    resp.close()
                    if reason:
                        raise _Failure("challenge", reason)
                    if status in (429, 503):
                        retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
                    suffix = f" after {attempt} attempts" if attempt > 1 else ""
                    raise _Failure("http", f"HTTP {status}{suffix}", retryable=True)
                return resp, body
            except _Failure as failure:
                if not failure.retryable or last:
                    if failure.retryable and attempt > 1 and "after" not in failure.message:
                        failure.message += f" after {attempt} attempts"
                    raise
                time.sleep(self._backoff(attempt, retry_after))
        raise AssertionError("unreachable")

    def _response_body(self, resp: requests.Response, deadline: float, feed: bool = False) -> bytes | None:
        status = resp.status_code
        if status in _REDIRECT_STATUSES or status == 304:
            # Read the (empty or short) body: the connection then goes back to the pool. requests
            # closes the connection of a streamed response left unread, and every 304 of a warm
            # cycle would cost a new TCP connection.
            with contextlib.suppress(_Failure):
                self._read_body(resp, deadline, _DRAIN_CAP)
            return None
        length = resp.headers.get("Content-Length", "")
        if status == 200:
            _, media, _ = _content_type(resp.headers)
            if feed:
                if media not in _FEED_TYPES and not media.endswith(("+json", "+xml")):
                    return None  # not a feed: not downloaded
            elif media not in _HTML_TYPES and media not in _SNIFF_TYPES:
                return None  # not HTML: not downloaded
            if length.strip().isdigit() and int(length) > self.max_bytes:
                raise _Failure(
                    "too_large", f"body over {self.max_bytes} bytes (Content-Length {int(length)})"
                )
            return self._read_body(resp, deadline, self.max_bytes)
        # An error answer: read a bounded prefix, enough to recognise a challenge page.
        try:
            return self._read_body(resp, deadline, _ERROR_BODY_CAP)
        except _Failure as failure:
            if failure.kind == "too_large":
                return b""
            raise

    @staticmethod
    def _peek_text(resp: requests.Response, body: bytes | None) -> str:
        if not body:
            return ""
        _, _, charset = _content_type(resp.headers)
        return decode_html(body, charset)[0]

    # -- the public call ---------------------------------------------------------------------

    def fetch_page(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        min_delay_s: float = 1.0,
        allow_private: bool = False,
        encoding: str | None = None,
        feed: bool = False,
    ) -> FetchResult:
        """Fetch one page. Network and HTTP problems end up in `error`/`error_kind`, never raised.

        `allow_private`: let this fetch reach loopback/private addresses (only for sources whose own
        configured URLs live there). `encoding`: a codec to decode with, overriding header and meta.
        `feed`: the body is a listing feed (JSON, RSS, Atom) instead of an HTML page.
        Raises ValueError only for an unknown `encoding` override.
        """
        if encoding is not None and normalize_charset(encoding) is None:
            raise ValueError(f"unknown encoding: {encoding}")
        started = time.monotonic()
        try:
            current = canonical_url(url)
        except ValueError:
            result = FetchResult(url=url, final_url=url, error=f"invalid URL: {url}", error_kind="scheme")
            result.elapsed_s = time.monotonic() - started
            return result
        result = FetchResult(url=url, final_url=current)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            self._follow(current, headers, min_delay_s, allow_private, encoding, result, feed)
        except _Failure as failure:
            result.error, result.error_kind = failure.message, failure.kind
            result.text = None
            if failure.bytes_read is not None:
                result.bytes = failure.bytes_read
        result.elapsed_s = time.monotonic() - started
        result.fetched_at = datetime.now(UTC)
        return result

    def _follow(
        self,
        current: str,
        headers: dict[str, str],
        min_delay_s: float,
        allow_private: bool,
        encoding: str | None,
        result: FetchResult,
        feed: bool = False,
    ) -> None:
        visited = {current}
        while True:
            result.final_url = current
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https"):
                raise _Failure("scheme", f"unsupported URL scheme: {parts.scheme or '(none)'}: {current}")
            host = parts.hostname
            if not host:
                raise _Failure("scheme", f"URL has no host: {current}")
            if not allow_private:
                bad = _bad_address(host)
                if bad is not None:
                    what = bad if bad == host.strip("[]") else f"{host} ({bad})"
                    raise _Failure("blocked", f"blocked: {what} is a private address")
            delay = min_delay_s
            if self.respect_robots:
                robots = self._robots_for(f"{parts.scheme}://{parts.netloc}", min_delay_s, allow_private)
                if robots is not None:
                    if not robots.can_fetch(self.user_agent, current):
                        raise _Failure("robots", "robots.txt disallows")
                    crawl_delay = robots.crawl_delay(self.user_agent)
                    if crawl_delay:
                        delay = max(delay, min(float(crawl_delay), _MAX_CRAWL_DELAY_S))
            resp, body = self._request(current, headers, delay, result, feed)
            status = resp.status_code
            result.status = status
            raw_type, media, charset = _content_type(resp.headers)
            result.content_type = raw_type
            result.etag = resp.headers.get("ETag")
            result.last_modified = resp.headers.get("Last-Modified")
            result.bytes = len(body) if body else 0
            if status in _REDIRECT_STATUSES:
                # get_redirect_target also repairs a UTF-8 Location that http.client decoded as latin-1
                target = self._session(parts.netloc).get_redirect_target(resp)
                resp.close()
                if not target:
                    raise _Failure("http", f"HTTP {status} without a Location header")
                result.redirects.append(current)
                try:
                    nxt = canonical_url(urljoin(current, target))
                except ValueError as exc:
                    raise _Failure("redirect", f"invalid redirect target: {target}") from exc
                if nxt in visited:
                    raise _Failure("redirect", "redirect loop")
                if len(result.redirects) >= MAX_REDIRECTS:
                    raise _Failure("redirect", f"too many redirects (over {MAX_REDIRECTS})")
                visited.add(nxt)
                current = nxt
                continue
            resp.close()
            if feed and status == 200 and body is not None and body.strip():
                self._finish_feed(status, resp, body, charset, encoding, result)
            else:
                self._finish(status, resp, body, media, charset, headers, encoding, result)
            return

    def _finish_feed(
        self,
        status: int,
        resp: requests.Response,
        body: bytes,
        charset: str | None,
        encoding: str | None,
        result: FetchResult,
    ) -> None:
        """A listing feed: decoded like a page (XML may declare its encoding), never HTML-sniffed."""
        if charset is None:
            declared = _XML_ENCODING.match(body[:200])
            charset = declared.group(1).decode("ascii") if declared else None
        text, codec, source, bad = decode_html(body, charset, encoding)
        reason = detect_challenge(status, resp.headers, text)
        if reason:
            raise _Failure("challenge", reason)
        result.text, result.encoding = text, codec
        result.encoding_source, result.replacement_chars = source, bad

    def _finish(
        self,
        status: int,
        resp: requests.Response,
        body: bytes | None,
        media: str,
        charset: str | None,
        request_headers: dict[str, str],
        encoding: str | None,
        result: FetchResult,
    ) -> None:
        if status == 304:
            if not request_headers:
                raise _Failure("http", "HTTP 304 to an unconditional request")
            result.not_modified = True
            return
        if status != 200:
            reason = detect_challenge(status, resp.headers, self._peek_text(resp, body))
            if reason:
                raise _Failure("challenge", reason)
            if status in (404, 410):
                result.gone = True
                return
            raise _Failure("http", f"HTTP {status}")
        if body is None:
            raise _Failure("not_html", f"not HTML: {media}")
        if not body.strip():
            raise _Failure("empty", "empty body")
        for magic, kind in _MAGIC:
            if body.startswith(magic):
                raise _Failure("not_html", f"not HTML: {kind} (sniffed; served as {media or 'no type'})")
        if media in _SNIFF_TYPES and not _HTML_SNIFF_RE.match(body[:1024].lstrip(b"\xef\xbb\xbf")):
            raise _Failure(
                "not_html", f"not HTML: {media or 'no content type'} and the body does not look like HTML"
            )
        if _close_delimited(resp.headers) and _unclosed_html(body):
            # Without Content-Length or chunked framing a dropped connection looks like the end of
            # the body: half a page would become a new version with half the text.
            raise _Failure("truncated", "truncated HTML: the connection closed before </body> or </html>")
        text, codec, source, bad = decode_html(body, charset, encoding)
        reason = detect_challenge(status, resp.headers, text)
        if reason:
            raise _Failure("challenge", reason)
        result.text, result.encoding = text, codec
        result.encoding_source, result.replacement_chars = source, bad
