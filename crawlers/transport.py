"""How the fetcher's requests reach a server: sessions, their adapter, and the connections under it.

A requests.Session mounts `_Adapter`, whose urllib3 pools make `_HTTPConnection`/
`_HTTPSConnection`: with a resolver (crawlers.guard) they connect only to the addresses it
checked, never to a fresh DNS answer, and every socket is a deadline socket (crawlers.deadline).
TLS still verifies, and sends SNI for, the host name. `_Session` never follows or even parses
redirects: the fetcher follows them by hand, checking each hop. `_get` is the one GET the fetcher
sends; `_send` turns whatever requests and urllib3 raise for it into a `_Failure` (a timeout at
the request's deadline named as the deadline's, a name that does not resolve as such). The
credentials in a URL (user:password@) become a Basic Authorization header (`_basic_auth`), which
the fetcher sends to that URL's origin (`_origin`) only, and are taken out of every URL that is
stored, shown or logged (`_redact`).
"""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import requests.utils
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager
from urllib3.util.connection import allowed_gai_family

from .deadline import _DEADLINE_SLACK_S, _DeadlineSocket, _DeadlineSSLSocket
from .failures import _caused_by, _describe, _Failure
from .guard import _Blocked, _Resolver

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}


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
        prepared,
        stream=True,
        timeout=timeout,
        verify=session.verify,  # type: ignore[arg-type]  # never None: requests' default is True
        cert=session.cert,
        proxies={},
    )
    extract_cookies_to_jar(session.cookies, prepared, response.raw)
    return response


def _send(
    session: requests.Session,
    url: str,
    host: str,
    headers: dict[str, str],
    deadline: float,
    timeout: tuple[float, float],
    total_timeout_s: float,
) -> requests.Response:
    """One GET, up to the response headers; every failure a _Failure."""
    try:
        return _get(session, url, headers, timeout)
    except _Blocked as exc:  # the address a name resolved to at connection time is private
        raise _Failure("blocked", str(exc)) from None
    except requests.ConnectTimeout as exc:
        raise _Failure("timeout", "connect timeout", retryable=True) from exc
    except requests.RequestException as exc:
        if time.monotonic() >= deadline - _DEADLINE_SLACK_S:
            raise _Failure(
                "timeout",
                f"read timeout (status line or headers too slow: the request's "
                f"{total_timeout_s:g} s deadline passed)",
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


def _new_session(resolver: _Resolver | None, pool_size: int, user_agent: str) -> requests.Session:
    """A session whose connections go only to addresses `resolver` checked (None: to any)."""
    session = _Session()
    adapter = _Adapter(resolver, pool_connections=2, pool_maxsize=pool_size, max_retries=0)
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
            "User-Agent": user_agent,
            "Accept": "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.5",
            "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5",
        }
    )
    return session


def _proxy_for(session: requests.Session, url: str) -> str | None:
    """The proxy a request for `url` goes through (from the environment), else None."""
    if not session.trust_env:
        return None
    proxies = requests.utils.get_environ_proxies(url, no_proxy=None)
    return requests.utils.select_proxy(url, proxies) if proxies else None


# -- connections that connect to checked addresses, on deadline sockets -----------------------------


def _open_socket(conn: HTTPConnection, resolver: _Resolver | None) -> socket.socket:
    """A connected _DeadlineSocket to `conn`'s host: to an address `resolver` checked, or (no
    resolver: a private-allowed source, or the proxy) to what getaddrinfo answers."""
    host, port = conn._dns_host, conn.port  # urllib3: the host to resolve (no trailing dot)
    if resolver is not None:
        targets: list[tuple[int, Any]] = [
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
        self.pool_classes_by_scheme = _POOL_CLASSES
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
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


# -- credentials in URLs ---------------------------------------------------------------------------

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
