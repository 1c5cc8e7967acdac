"""Polite, bounded page fetching for policy pages.

`Fetcher.fetch_page` never raises for what a site does: every outcome is a `FetchResult`, its
error reason neutralised for terminals. It keeps one requests.Session per host, spaces requests
to a host by `min_delay_s`, honours robots.txt, retries transient failures with backoff, follows
redirects by hand (checking every hop's scheme, address and robots rules), caps body size, bounds
each request by a wall-clock deadline (connect, status line, headers and body: every socket read
waits at most the time left), decodes GBK/GB2312 pages right (WHATWG charset labels only), refuses
undecodable content encodings and anti-bot challenge pages as content.

The private-address guard resolves a host once, checks every address it resolves to, and connects
to exactly those addresses (pinned for RESOLVE_TTL_S; TLS still verifies the name): DNS rebinding
cannot swap in a private address, and a name that does not resolve reaches nothing.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import email.utils
import ipaddress
import logging
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import requests
import requests.utils
import urllib3.exceptions
import urllib3.response
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util.connection import allowed_gai_family

from .challenge import detect_challenge
from .discover import canonical_url
from .encoding import decode_html, web_codec
from .pacing import HostPacer, LocalPacer
from .reasons import safe_reason
from .robots import RobotsRules

log = logging.getLogger(__name__)

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
# A timeout this close to the request's deadline is the deadline's (socket timeouts may fire a
# little early).
_DEADLINE_SLACK_S = 0.05
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


# What a fetch reads: an HTML page, a listing feed, or a file of any type (an attachment).
PAGE, FEED, FILE = "page", "feed", "file"


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
    text: str | None = None  # decoded HTML when status 200 and no error ("" for a file)
    body: bytes | None = None  # a file's bytes (fetch_page(file=True)), status 200 and no error
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


class _UnknownOverride(ValueError):
    """An `encoding` override that names no codec at all (fetch_page raises ValueError)."""


class _Session(requests.Session):
    """A Session that never resolves redirects itself: even with allow_redirects=False, requests
    would parse the next Location (raising ValueError on a malformed one). Fetcher follows by hand."""

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return iter(())


def _redirect_target(session: requests.Session, resp: requests.Response) -> str | None:
    """The Location of a redirect; a UTF-8 Location that http.client decoded as latin-1 repaired
    (requests' get_redirect_target), raw bytes that are no UTF-8 kept as latin-1."""
    try:
        return session.get_redirect_target(resp)
    except UnicodeError:
        return resp.headers.get("Location")


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


# -- the private-address guard -------------------------------------------------------------------

# Names that are private whatever DNS says (and that a proxy would resolve on its own network):
# loopback and mDNS names, cloud metadata services, the special-use internal suffixes.
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".corp")
_PRIVATE_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
RESOLVE_TTL_S = 30.0  # how long a checked resolution is used (and connected to) before asking again


def _public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for a globally routable unicast address (IPv6 forms that embed an IPv4 address judged
    by that address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _public_ip(embedded)
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
        or not ip.is_global
    )


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _private_name(host: str, proxied: bool) -> bool:
    """A name that is private by its spelling alone. Behind a proxy a name without a dot is too:
    the proxy resolves it in its own search domain (intranet, metadata, printer...)."""
    name = host.rstrip(".").lower()
    if name in _PRIVATE_NAMES or name.endswith(_PRIVATE_SUFFIXES):
        return True
    return proxied and "." not in name and _ip_literal(name) is None


def _bad_address(host: str) -> str | None:
    """The first non-public address `host` is or resolves to, else None (also when it does not
    resolve: for `is_private_address`; the fetcher's own guard fails closed, see _Resolver)."""
    host = host.strip("[]")
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        addresses = [ip for ip in (_ip_literal(str(info[4][0])) for info in infos) if ip is not None]
    for ip in addresses:
        if not _public_ip(ip):
            return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    return None


def is_private_address(host: str) -> bool:
    """True if `host` (a name or an IP literal) is or resolves to any non-public address.

    False for a name that does not resolve (a source whose configured host is briefly unresolvable
    must not be taken for a private one and lose the guard).
    """
    return _bad_address(host) is not None


class _Blocked(Exception):
    """A connection the guard refuses (`what`: the host, with the private address it resolved to)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"blocked: {what} is a private address")
        self.what = what


class _Resolver:
    """Resolve a host once, check every address it resolves to, and hand out exactly those
    addresses to connect to (DNS rebinding then cannot swap in a private one), for RESOLVE_TTL_S.

    A name that does not resolve raises socket.gaierror: nothing is connected to (fail closed).
    """

    def __init__(self, ttl_s: float = RESOLVE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, tuple[tuple[int, str], ...]]] = {}

    def addresses(self, host: str) -> tuple[tuple[int, str], ...]:
        """(family, address) of every address of `host`, all public; _Blocked otherwise."""
        literal = _ip_literal(host)
        if literal is not None:
            bad = _bad_address(host)
            if bad is not None:
                raise _Blocked(bad)
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            return ((family, host.strip("[]")),)
        name = host.rstrip(".").lower()
        if _private_name(name, proxied=False):
            raise _Blocked(host)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        except UnicodeError as exc:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is no valid host name") from exc
        found: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            ip = _ip_literal(str(sockaddr[0]))
            if ip is None or not _public_ip(ip):
                raise _Blocked(f"{host} ({sockaddr[0]})")
            if (family, str(sockaddr[0])) not in found:
                found.append((family, str(sockaddr[0])))
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} does not resolve")
        with self._lock:
            self._cache[name] = (now + self.ttl_s, tuple(found))
        return tuple(found)


# -- the request deadline ------------------------------------------------------------------------

_deadline = threading.local()  # .at: time.monotonic() by which this thread's request must be done


class _DeadlinePassed(TimeoutError):
    """Raised by a socket read or write after the request's deadline (urllib3: a read timeout)."""


class _request_deadline:  # lowercase: used like a function, with _request_deadline(at): ...
    """Sockets used by this thread inside the block time out at `at`: every recv and send waits
    at most the time left (and at most the socket's own timeout). Connect, status line, headers,
    chunk sizes and body are all bounded, however slowly a server drips them."""

    __slots__ = ("at", "previous")

    def __init__(self, at: float) -> None:
        self.at = at
        self.previous: float | None = None

    def __enter__(self) -> None:
        self.previous = getattr(_deadline, "at", None)
        _deadline.at = self.at

    def __exit__(self, *exc: object) -> None:
        _deadline.at = self.previous


class _DeadlineMixin:
    """Socket methods that shrink the timeout of each recv/send to the thread's request deadline."""

    __slots__ = ()
    _pw_base: float | None

    def settimeout(self, value: float | None) -> None:
        self._pw_base = value
        socket.socket.settimeout(self, value)  # type: ignore[arg-type]

    def _pw_tighten(self) -> None:
        base = self._pw_base
        at = getattr(_deadline, "at", None)
        timeout = base
        if at is not None:
            left = at - time.monotonic()
            if left <= 0:
                raise _DeadlinePassed("the request's deadline passed")
            timeout = left if base is None else min(base, left)
        if timeout != socket.socket.gettimeout(self):  # type: ignore[arg-type]
            socket.socket.settimeout(self, timeout)  # type: ignore[arg-type]

    def connect(self, *args: Any, **kwargs: Any) -> None:
        self._pw_tighten()
        return super().connect(*args, **kwargs)  # type: ignore[misc]

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._pw_tighten()
        return super().recv(*args, **kwargs)  # type: ignore[misc]

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._pw_tighten()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc]

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._pw_tighten()
        return super().send(*args, **kwargs)  # type: ignore[misc]

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._pw_tighten()
        return super().sendall(*args, **kwargs)  # type: ignore[misc]


class _DeadlineSocket(_DeadlineMixin, socket.socket):
    __slots__ = ("_pw_base",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pw_base = socket.socket.gettimeout(self)


class _DeadlineSSLSocket(_DeadlineMixin, ssl.SSLSocket):
    """An SSLSocket made by the SSLContext, given this class after the handshake."""


# -- connections that connect to checked addresses, on deadline sockets -----------------------------


def _open_socket(conn: HTTPConnection, resolver: _Resolver | None) -> socket.socket:
    """A connected _DeadlineSocket to `conn`'s host: to an address `resolver` checked, or (no
    resolver: a private-allowed source, or the proxy) to what getaddrinfo answers."""
    host, port = conn._dns_host, conn.port  # urllib3: the host to resolve (no trailing dot)
    if resolver is not None:
        targets = [
            (family, (address, port) if family == socket.AF_INET else (address, port, 0, 0))
            for family, address in resolver.addresses(host)
        ]
        allowed = allowed_gai_family()
        targets = [t for t in targets if allowed == socket.AF_UNSPEC or t[0] == allowed] or targets
    else:
        infos = socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)
        targets = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
    error: OSError | None = None
    for family, sockaddr in targets:
        sock = _DeadlineSocket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            timeout = conn.timeout
            if timeout is None or isinstance(timeout, int | float):
                sock.settimeout(timeout)
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error if error is not None else OSError(f"no address to connect to for {host}")


def _new_conn(conn: HTTPConnection, resolver: _Resolver | None) -> socket.socket:
    """urllib3's HTTPConnection._new_conn (same errors), through _open_socket."""
    try:
        sock = _open_socket(conn, resolver)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        ) from exc
    except OSError as exc:
        raise urllib3.exceptions.NewConnectionError(
            conn, f"Failed to establish a new connection: {exc}"
        ) from exc
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


class _HTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, pw_resolver: _Resolver | None = None, **kwargs: Any) -> None:
        self._pw_resolver = pw_resolver
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        return _new_conn(self, self._pw_resolver)


class _HTTPSConnection(HTTPSConnection):
    """TLS to the pinned address; SNI and certificate verification stay on the host name."""

    def __init__(self, *args: Any, pw_resolver: _Resolver | None = None, **kwargs: Any) -> None:
        self._pw_resolver = pw_resolver
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        return _new_conn(self, self._pw_resolver)

    def connect(self) -> None:
        super().connect()
        sock = self.sock
        if type(sock) is ssl.SSLSocket:  # the SSLContext made a plain SSLSocket: give it the deadline
            base = sock.gettimeout()
            try:
                sock.__class__ = _DeadlineSSLSocket
            except TypeError:  # an interpreter that refuses: the body is still checked between reads
                return
            sock._pw_base = base  # type: ignore[attr-defined]


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class _PoolManager(PoolManager):
    def __init__(self, *args: Any, pw_resolver: _Resolver | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool_classes_by_scheme = _POOL_CLASSES  # type: ignore[assignment]
        self._pw_resolver = pw_resolver

    def _new_pool(
        self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        if self._pw_resolver is not None:
            pool.conn_kw["pw_resolver"] = self._pw_resolver
        return pool


class _Adapter(HTTPAdapter):
    """requests' adapter on _PoolManager: with `resolver`, connections go only to addresses it
    checked; every socket keeps the request deadline. A proxy is connected to as it is (it may
    well be private); what goes through it is checked by Fetcher._check_host."""

    def __init__(self, resolver: _Resolver | None, **kwargs: Any) -> None:
        self._pw_resolver = resolver
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _PoolManager(
            num_pools=connections, maxsize=maxsize, block=block, pw_resolver=self._pw_resolver, **pool_kwargs
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager) and manager.pool_classes_by_scheme is not _POOL_CLASSES:
            manager.pool_classes_by_scheme = _POOL_CLASSES  # type: ignore[assignment]
        return manager


def _decodable_codings() -> frozenset[str]:
    """Content-Encodings urllib3 decodes here (br only with brotli installed, zstd with zstandard)."""
    return frozenset(urllib3.response.HTTPResponse.CONTENT_DECODERS) | {"identity"}


def _undecodable_coding(headers: Any) -> str | None:
    """The first Content-Encoding of the response that cannot be decoded, else None."""
    value = headers.get("Content-Encoding")
    if not value:
        return None
    decodable = _decodable_codings()
    for coding in value.lower().split(","):
        coding = coding.strip()
        if coding and coding not in decodable:
            return coding
    return None


_USERINFO_RE = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*:)?//[^/?#]*@")


def _redact(url: str) -> str:
    """`url` without user:password@ (for anything stored, shown or logged)."""
    if "@" not in url:
        return url
    return _USERINFO_RE.sub(lambda m: (m.group(1) or "") + "//", url)


def _basic_auth(url: str) -> str | None:
    """The Authorization header value for the credentials in `url`, else None."""
    if "@" not in url:
        return None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return None
    token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of type `kind` in `exc`'s causes, contexts and urllib3 reasons."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        stack.extend(item for item in linked if isinstance(item, BaseException))
    return None


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
        pacer: HostPacer | None = None,
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
        self._resolver = _Resolver()
        self._unresolved: dict[str, float] = {}  # behind a proxy: names that do not resolve here, until
        # origin -> Authorization, from the user:password@ of URLs given to fetch_page: sent to that
        # origin only, never to the hosts its pages link or redirect to.
        self._credentials: dict[str, str] = {}
        self._sessions: dict[tuple[str, bool], requests.Session] = {}
        # Whose turn it is at each host: this process's (LocalPacer) or shared by every worker.
        self.pacer: HostPacer = pacer if pacer is not None else LocalPacer()
        self._robots: dict[str, tuple[RobotsRules | None, float]] = {}
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

    def _session(self, netloc: str, guarded: bool = True) -> requests.Session:
        """The session for `netloc`: `guarded`, it connects only to addresses the guard checked."""
        with self._lock:
            session = self._sessions.get((netloc, guarded))
            if session is None:
                session = _Session()
                adapter = _Adapter(
                    self._resolver if guarded else None,
                    pool_connections=2,
                    pool_maxsize=self.pool_size,
                    max_retries=0,
                )
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
                self._sessions[(netloc, guarded)] = session
            return session

    # -- the private-address guard -------------------------------------------------------------

    @staticmethod
    def _proxy_for(session: requests.Session, url: str) -> str | None:
        """The proxy a request for `url` goes through (from the environment), else None."""
        if not session.trust_env:
            return None
        proxies = requests.utils.get_environ_proxies(url, no_proxy=None)
        return requests.utils.select_proxy(url, proxies) if proxies else None

    def _check_host(self, host: str, proxied: bool) -> None:
        """_Failure("blocked") when `host` is private: by its name, as an address literal, or by
        any address it resolves to. Direct, the request then connects only to the addresses
        checked here (see _Resolver), and a name that does not resolve reaches nothing. Behind a
        proxy, which resolves names itself, a name that does not resolve here is left to it
        unless its spelling is private (.internal, .local, metadata, no dot...)."""
        if _private_name(host, proxied):
            raise _Failure("blocked", f"blocked: {host} is a private name")
        if proxied and self._unresolved.get(host, 0.0) > time.monotonic():
            return  # known not to resolve here: the proxy's to resolve
        try:
            self._resolver.addresses(host)
        except _Blocked as exc:
            raise _Failure("blocked", str(exc)) from None
        except OSError:
            # Direct: the request resolves again, fails closed, and is retried like any DNS failure.
            if proxied:
                with self._lock:
                    self._unresolved[host] = time.monotonic() + self._resolver.ttl_s

    def _turn(self, host: str, min_delay_s: float) -> contextlib.AbstractContextManager[None]:
        """`host`'s turn for one request (see crawlers.pacing), `min_delay_s` apart."""
        return self.pacer.turn(host, max(0.0, min_delay_s) * self.delay_scale)

    def _wait_turn(self, host: str, min_delay_s: float) -> None:
        """Wait for `host`'s turn for a request made elsewhere (the browser's)."""
        with self._turn(host, min_delay_s):
            pass

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_base_s * 2 ** (attempt - 1), self.backoff_max_s)
        delay += random.uniform(0, delay * 0.1)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.backoff_max_s)

    # -- robots.txt --------------------------------------------------------------------------

    def _robots_for(self, origin: str, min_delay_s: float, allow_private: bool) -> RobotsRules | None:
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:
            cached = self._robots.get(origin)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            parser = self._load_robots(origin, min_delay_s, allow_private)
            self._robots[origin] = (parser, time.monotonic() + _ROBOTS_TTL_S)
            return parser

    def _load_robots(self, origin: str, min_delay_s: float, allow_private: bool) -> RobotsRules | None:
        """Parsed robots.txt, or None (allow all) when it is missing, broken or unreachable."""
        try:
            return self._load_robots_unchecked(origin, min_delay_s, allow_private)
        except Exception:  # whatever the site sends: robots.txt unreadable, allow all
            log.debug("robots.txt of %s unreadable", origin, exc_info=True)
            return None

    def _load_robots_unchecked(
        self, origin: str, min_delay_s: float, allow_private: bool
    ) -> RobotsRules | None:
        url = origin + "/robots.txt"
        for _ in range(5):
            try:
                url = canonical_url(url)
            except ValueError:
                return None
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return None
            session = self._session(parts.netloc, not allow_private)
            if not allow_private:
                try:
                    self._check_host(parts.hostname, self._proxy_for(session, url) is not None)
                except _Failure:
                    return None
            with self._turn(parts.hostname, min_delay_s):
                deadline = time.monotonic() + self.total_timeout_s
                auth = self._credentials.get(_origin(url)) if self._credentials else None
                with _request_deadline(deadline):
                    try:
                        resp = session.get(
                            url,
                            headers={"Authorization": auth} if auth else None,
                            timeout=(self.connect_timeout, self.read_timeout),
                            stream=True,
                            allow_redirects=False,
                        )
                    except (requests.RequestException, _Blocked):
                        return None
                    try:
                        if resp.status_code in _REDIRECT_STATUSES:
                            target = resp.headers.get("Location")
                            if not target:
                                return None
                            url = urljoin(url, target)
                            continue
                        if resp.status_code != 200 or _undecodable_coding(resp.headers):
                            return None  # 4xx: no rules; 5xx: treated as allow all too
                        try:
                            body = self._read_body(resp, deadline, _ROBOTS_CAP)
                        except _Failure:
                            return None
                    finally:
                        resp.close()
                return RobotsRules(body.decode("utf-8", errors="replace"))
        return None

    # -- one request -------------------------------------------------------------------------

    def _read_body(self, resp: requests.Response, deadline: float, cap: int) -> bytes:
        """Stream the body; _Failure past `cap` bytes, on a read timeout or past `deadline`."""
        raw = resp.raw
        read = getattr(raw, "read1", None) or raw.read
        buf = bytearray()
        too_slow = f"read timeout (body too slow: the request's {self.total_timeout_s:g} s deadline passed)"
        try:
            while True:
                if time.monotonic() > deadline:
                    raise _Failure("timeout", too_slow, retryable=True)
                chunk = read(65536, decode_content=True)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > cap:
                    raise _Failure("too_large", f"body over {cap} bytes", bytes_read=len(buf))
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
            if time.monotonic() >= deadline - _DEADLINE_SLACK_S:
                raise _Failure("timeout", too_slow, retryable=True) from exc
            raise _Failure("timeout", "read timeout", retryable=True) from exc
        except urllib3.exceptions.DecodeError as exc:
            coding = resp.headers.get("Content-Encoding", "")
            raise _Failure("content_encoding", f"body does not decode as {coding}: {_describe(exc)}") from exc
        except (urllib3.exceptions.ProtocolError, OSError) as exc:
            if _caused_by(exc, TimeoutError) is not None and time.monotonic() >= deadline - _DEADLINE_SLACK_S:
                raise _Failure("timeout", too_slow, retryable=True) from exc
            raise _Failure("connection", f"connection broken: {_describe(exc)}", retryable=True) from exc
        return bytes(buf)

    def _send(
        self, session: requests.Session, url: str, host: str, headers: dict[str, str], deadline: float
    ) -> requests.Response:
        """One GET, up to the response headers; every failure a _Failure."""
        try:
            return _get(session, url, headers, (self.connect_timeout, self.read_timeout))
        except _Blocked as exc:  # the address a name resolved to at connection time is private
            raise _Failure("blocked", str(exc)) from None
        except requests.ConnectTimeout as exc:
            raise _Failure("timeout", "connect timeout", retryable=True) from exc
        except requests.RequestException as exc:
            if time.monotonic() >= deadline - _DEADLINE_SLACK_S:
                raise _Failure(
                    "timeout",
                    f"read timeout (status line or headers too slow: the request's "
                    f"{self.total_timeout_s:g} s deadline passed)",
                    retryable=True,
                ) from exc
            if isinstance(exc, requests.Timeout):
                raise _Failure("timeout", "read timeout", retryable=True) from exc
            if _caused_by(exc, urllib3.exceptions.NameResolutionError) is not None:
                raise _Failure(
                    "connection", f"connection failed: {host} does not resolve", retryable=True
                ) from exc
            if isinstance(exc, requests.ConnectionError):
                raise _Failure("connection", f"connection failed: {_describe(exc)}", retryable=True) from exc
            raise _Failure("connection", f"request failed: {_describe(exc)}") from exc

    def _request(
        self,
        url: str,
        headers: dict[str, str],
        min_delay_s: float,
        result: FetchResult,
        mode: str = PAGE,
        session: requests.Session | None = None,
    ) -> tuple[requests.Response, bytes | None]:
        """GET `url` with retries. Returns the response and its body (None for 3xx/304, and for a 200
        that is not what `mode` reads: PAGE HTML, FEED JSON/RSS/Atom, FILE any type)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if session is None:
            session = self._session(parts.netloc)
        result.attempts = 0
        for attempt in range(1, self.max_attempts + 1):
            result.attempts = attempt
            result.status = None
            last = attempt == self.max_attempts
            retry_after: float | None = None
            try:
                # The turn ends with the body read: a shared pacer counts the interval from there.
                with self._turn(host, min_delay_s):
                    deadline = time.monotonic() + self.total_timeout_s
                    with _request_deadline(deadline):
                        resp = self._send(session, url, host, headers, deadline)
                        try:
                            body = self._response_body(resp, deadline, mode)
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

    def _response_body(self, resp: requests.Response, deadline: float, mode: str = PAGE) -> bytes | None:
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
            if mode == FEED:
                if media not in _FEED_TYPES and not media.endswith(("+json", "+xml")):
                    return None  # not a feed: not downloaded
            elif mode == PAGE and media not in _HTML_TYPES and media not in _SNIFF_TYPES:
                return None  # not HTML: not downloaded
            coding = _undecodable_coding(resp.headers)
            if coding is not None:
                raise _Failure("content_encoding", f"undecodable content encoding: {coding}")
            if length.strip().isdigit() and int(length) > self.max_bytes:
                raise _Failure(
                    "too_large", f"body over {self.max_bytes} bytes (Content-Length {int(length)})"
                )
            return self._read_body(resp, deadline, self.max_bytes)
        if _undecodable_coding(resp.headers) is not None:
            return b""  # an error answer in an encoding we cannot read: nothing to recognise in it
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
        file: bool = False,
    ) -> FetchResult:
        """Fetch one page. Whatever the site does ends up in `error`/`error_kind`, never raised.

        `allow_private`: let this fetch reach loopback/private addresses (only for sources whose own
        configured URLs live there). `encoding`: a codec to decode with, overriding header and meta
        (a WHATWG label or Python's name of a web encoding; a Python-only codec such as rot13,
        base64 or idna is an "encoding" fetch error). `file`: an attachment, any type, its bytes in
        `body` (`text` is ""). `feed`: the body is a listing feed (JSON,
        RSS, Atom) instead of an HTML page. Credentials in `url` (user:password@) are sent, as
        Basic auth, to that URL's origin only (this and later fetches from it), never to the
        hosts its pages link or redirect to; no URL in the result carries them.
        Raises ValueError only for an `encoding` override no codec is named (configuration
        validation rejects those).
        """
        started = time.monotonic()
        result = FetchResult(url=_redact(url), final_url=_redact(url))
        try:
            mode = FILE if file else FEED if feed else PAGE
            self._fetch(url, etag, last_modified, min_delay_s, allow_private, encoding, mode, result)
        except _Failure as failure:
            result.error, result.error_kind = failure.message, failure.kind
            result.text = result.body = None
            if failure.bytes_read is not None:
                result.bytes = failure.bytes_read
        except _UnknownOverride:
            raise
        except Exception as exc:  # a bug, or a library tripped up by what the site sent
            self._internal_error(result, exc)
        if result.error is not None:
            result.error = safe_reason(result.error)
        result.elapsed_s = time.monotonic() - started
        result.fetched_at = datetime.now(UTC)
        return result

    @staticmethod
    def _internal_error(result: FetchResult, exc: Exception) -> None:
        log.exception("fetching %s failed", result.final_url)
        result.error, result.error_kind = f"fetch failed: {type(exc).__name__}: {exc}", "internal"
        result.text = result.body = None

    def _fetch(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        min_delay_s: float,
        allow_private: bool,
        encoding: str | None,
        mode: str,
        result: FetchResult,
    ) -> None:
        if encoding is not None and web_codec(encoding) is None:
            try:
                codecs.lookup(encoding)
            except (LookupError, TypeError, ValueError):
                raise _UnknownOverride(f"unknown encoding: {encoding}") from None
            raise _Failure("encoding", f"encoding override {encoding!r} is not a web encoding (WHATWG)")
        try:
            current = canonical_url(url)
            auth = _basic_auth(url)
        except ValueError:
            raise _Failure("scheme", f"invalid URL: {_redact(url)}") from None
        result.final_url = current
        if auth is not None:
            with self._lock:
                self._credentials[_origin(current)] = auth
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        self._follow(current, headers, min_delay_s, allow_private, encoding, result, mode)

    def _follow(
        self,
        current: str,
        headers: dict[str, str],
        min_delay_s: float,
        allow_private: bool,
        encoding: str | None,
        result: FetchResult,
        mode: str = PAGE,
    ) -> None:
        visited = {current}
        guarded = not allow_private
        while True:
            result.final_url = current
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https"):
                raise _Failure("scheme", f"unsupported URL scheme: {parts.scheme or '(none)'}: {current}")
            host = parts.hostname
            if not host:
                raise _Failure("scheme", f"URL has no host: {current}")
            session = self._session(parts.netloc, guarded)
            if guarded:  # every hop: the first URL and each redirect target
                self._check_host(host, self._proxy_for(session, current) is not None)
            delay = min_delay_s
            if self.respect_robots:
                robots = self._robots_for(f"{parts.scheme}://{parts.netloc}", min_delay_s, allow_private)
                if robots is not None:
                    if not robots.can_fetch(self.user_agent, current):
                        raise _Failure("robots", "robots.txt disallows")
                    crawl_delay = robots.crawl_delay(self.user_agent)
                    if crawl_delay:
                        delay = max(delay, min(float(crawl_delay), _MAX_CRAWL_DELAY_S))
            auth = self._credentials.get(_origin(current)) if self._credentials else None
            hop_headers = {**headers, "Authorization": auth} if auth else headers
            resp, body = self._request(current, hop_headers, delay, result, mode, session)
            status = resp.status_code
            result.status = status
            raw_type, media, charset = _content_type(resp.headers)
            result.content_type = raw_type
            result.etag = resp.headers.get("ETag")
            result.last_modified = resp.headers.get("Last-Modified")
            result.bytes = len(body) if body else 0
            if status in _REDIRECT_STATUSES:
                target = _redirect_target(session, resp)
                resp.close()
                if not target:
                    raise _Failure("http", f"HTTP {status} without a Location header")
                result.redirects.append(current)
                try:
                    nxt = canonical_url(urljoin(current, target))
                except ValueError as exc:
                    raise _Failure("redirect", f"invalid redirect target: {_redact(target)}") from exc
                if nxt in visited:
                    raise _Failure("redirect", "redirect loop")
                if len(result.redirects) >= MAX_REDIRECTS:
                    raise _Failure("redirect", f"too many redirects (over {MAX_REDIRECTS})")
                visited.add(nxt)
                current = nxt
                continue
            resp.close()
            if mode == FILE and status == 200 and body is not None:
                self._finish_file(status, resp, body, result)
            elif mode == FEED and status == 200 and body is not None and body.strip():
                self._finish_feed(status, resp, body, charset, encoding, result)
            else:
                self._finish(status, resp, body, media, charset, headers, encoding, result)
            return

    def _finish_file(self, status: int, resp: requests.Response, body: bytes, result: FetchResult) -> None:
        """An attachment (PDF, Word, OFD, spreadsheet …): the bytes as sent, read by
        extraction.files. A challenge or block page served in its place is a fetch error."""
        if not body.strip():
            raise _Failure("empty", "empty body")
        if _HTML_SNIFF_RE.match(body[:1024].lstrip(b"\xef\xbb\xbf")):
            reason = detect_challenge(status, resp.headers, self._peek_text(resp, body))
            if reason:
                raise _Failure("challenge", reason)
        result.body = body
        result.text = ""  # read in full; the text comes from the file's own format

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
            if status == 403:
                # A plain refusal: a block by the site (an IP or WAF rule), named like the challenges.
                raise _Failure("http", "HTTP 403 (blocked:403)")
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
