"""Polite, bounded page fetching for policy pages: `FetchResult`, and the `Fetcher` that ties it together.

Why this module is over 400 lines: what is left here is one flow, best read top to bottom: a
fetch's per-host state (sessions, turns, credentials), the redirect loop that checks every hop,
the retry loop around each request, and `fetch_page` turning every failure into the result. The
parts it calls live beside it: crawlers.guard (which addresses a fetch may reach), crawlers.deadline
(the request's deadline, kept by its sockets), crawlers.transport (sessions and connections to
checked addresses, one GET, credentials in URLs), crawlers.robots (robots.txt rules, loaded and
cached), crawlers.body (reading, sniffing and decoding bodies) and crawlers.failures (`_Failure`,
which every part ends a fetch with). Names other code and tests take from here are imported back
(`is_private_address`, `_content_type`, `_Failure`, `_parse_retry_after`, ...).

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

import codecs
import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests

from .body import (
    FEED,
    FILE,
    PAGE,
    _content_type,
    _finish,
    _finish_feed,
    _finish_file,
    _peek_text,
    _response_body,
)
from .challenge import detect_challenge
from .deadline import _request_deadline
from .discover import canonical_url
from .encoding import decode_html, web_codec
from .failures import _Failure, _parse_retry_after
from .guard import RESOLVE_TTL_S as RESOLVE_TTL_S  # public here before the guard moved out
from .guard import _bad_address, _HostGuard, _public_ip, _Resolver, is_private_address
from .pacing import HostPacer, LocalPacer
from .reasons import safe_reason
from .robots import _MAX_CRAWL_DELAY_S, RobotsRules, _load_robots, _RobotsCache
from .transport import (
    _REDIRECT_STATUSES,
    _basic_auth,
    _new_session,
    _origin,
    _proxy_for,
    _redact,
    _redirect_target,
    _send,
)

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


class _UnknownOverride(ValueError):
    """An `encoding` override that names no codec at all (fetch_page raises ValueError)."""


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
        # The guard's judgements looked up here at each call, not bound at import: tests patch
        # crawlers.fetch._public_ip and _bad_address to take 127.0.0.1 for a public address.
        self._resolver = _Resolver(
            public_ip=lambda ip: _public_ip(ip), bad_address=lambda host: _bad_address(host)
        )
        self._guard = _HostGuard(self._resolver)
        # origin -> Authorization, from the user:password@ of URLs given to fetch_page: sent to that
        # origin only, never to the hosts its pages link or redirect to.
        self._credentials: dict[str, str] = {}
        self._sessions: dict[tuple[str, bool], requests.Session] = {}
        # Whose turn it is at each host: this process's (LocalPacer) or shared by every worker.
        self.pacer: HostPacer = pacer if pacer is not None else LocalPacer()
        self._robots = _RobotsCache()

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
                session = _new_session(self._resolver if guarded else None, self.pool_size, self.user_agent)
                self._sessions[(netloc, guarded)] = session
            return session

    # -- the private-address guard, politeness, retries ----------------------------------------

    def _check_host(self, host: str, proxied: bool) -> None:
        """_Failure("blocked") when `host` is private (crawlers.guard)."""
        self._guard.check(host, proxied)

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
        """`origin`'s robots.txt rules, None to allow all (crawlers.robots)."""
        return self._robots.get(origin, lambda: _load_robots(self, origin, min_delay_s, allow_private))

    # -- one request -------------------------------------------------------------------------

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
                        timeouts = (self.connect_timeout, self.read_timeout)
                        resp = _send(session, url, host, headers, deadline, timeouts, self.total_timeout_s)
                        try:
                            body = _response_body(resp, deadline, mode, self.max_bytes, self.total_timeout_s)
                        except BaseException:
                            resp.close()
                            raise
                status = resp.status_code
                result.status = status
                if status >= 500 or status == 429:
                    reason = detect_challenge(status, resp.headers, _peek_text(resp, body))
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
                self._check_host(host, _proxy_for(session, current) is not None)
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
                _finish_file(status, resp, body, result)
            elif mode == FEED and status == 200 and body is not None and body.strip():
                _finish_feed(status, resp, body, charset, encoding, result)
            else:
                _finish(status, resp, body, media, charset, headers, encoding, result)
            return
