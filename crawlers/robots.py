"""robots.txt rules, read as the major crawlers read them (RFC 9309 plus `*` and `$` in paths).

The standard library's `urllib.robotparser` takes paths literally: `Disallow: /*.jsp` blocks nothing,
`Disallow: /private$` blocks every path under /private/. Protego (Scrapy's parser) implements the
wildcards, longest-match precedence between Allow and Disallow, and Crawl-delay. `RobotsRules`
keeps the two questions the fetchers ask (`can_fetch`, `crawl_delay`) in robotparser's argument
order, so callers do not depend on the parser.

Reading a site's robots.txt is a request like any other and goes through the fetcher's own
machinery (`_load_robots(fetcher, ...)`: its sessions, address guard, host turns, credentials
and request deadline), because robots.txt is fetched from hosts a page names, as unattended as
the page. Whatever goes wrong there (missing, a server error, unreachable, blocked, too big,
unparseable) allows all rather than failing the page. `_RobotsCache` keeps each origin's rules
for _ROBOTS_TTL_S and lets one thread at a time load them, so a batch of pages from one site
asks once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import requests
from protego import Protego

from .body import _read_body, _undecodable_coding
from .deadline import _request_deadline
from .discover import canonical_url
from .failures import _Failure
from .guard import _Blocked
from .transport import _REDIRECT_STATUSES, _origin, _proxy_for

if TYPE_CHECKING:
    from .fetch import Fetcher

log = logging.getLogger(__name__)

_ROBOTS_CAP = 512 * 1024
_ROBOTS_TTL_S = 6 * 3600
# Crawl-delay is honoured up to this: a robots.txt asking for minutes would stall a source's batch.
_MAX_CRAWL_DELAY_S = 30.0


class RobotsRules:
    """The rules of one robots.txt."""

    def __init__(self, text: str) -> None:
        self._rules = Protego.parse(text)

    def can_fetch(self, user_agent: str, url: str) -> bool:
        return bool(self._rules.can_fetch(url, user_agent))

    def crawl_delay(self, user_agent: str) -> float | None:
        delay = self._rules.crawl_delay(user_agent)
        return float(delay) if delay is not None else None


class _RobotsCache:
    """Each origin's rules (None: allow all) for _ROBOTS_TTL_S. One thread loads an origin's rules
    while the others asking for that origin wait for them, instead of each fetching robots.txt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[RobotsRules | None, float]] = {}
        self._locks: dict[str, threading.Lock] = {}

    def get(self, origin: str, load: Callable[[], RobotsRules | None]) -> RobotsRules | None:
        """`origin`'s cached rules, or what `load()` returns (then cached)."""
        with self._lock:
            lock = self._locks.setdefault(origin, threading.Lock())
        with lock:
            cached = self._rules.get(origin)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
            parser = load()
            self._rules[origin] = (parser, time.monotonic() + _ROBOTS_TTL_S)
            return parser


def _load_robots(
    fetcher: Fetcher, origin: str, min_delay_s: float, allow_private: bool
) -> RobotsRules | None:
    """Parsed robots.txt, or None (allow all) when it is missing, broken or unreachable."""
    try:
        return _load_robots_unchecked(fetcher, origin, min_delay_s, allow_private)
    except Exception:  # whatever the site sends: robots.txt unreadable, allow all
        log.debug("robots.txt of %s unreadable", origin, exc_info=True)
        return None


def _load_robots_unchecked(
    fetcher: Fetcher, origin: str, min_delay_s: float, allow_private: bool
) -> RobotsRules | None:
    """robots.txt as the fetcher reads a page (guard, turn, deadline; up to four redirects)."""
    url = origin + "/robots.txt"
    for _ in range(5):
        try:
            url = canonical_url(url)
        except ValueError:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        session = fetcher._session(parts.netloc, not allow_private)
        if not allow_private:
            try:
                fetcher._check_host(parts.hostname, _proxy_for(session, url) is not None)
            except _Failure:
                return None
        with fetcher._turn(parts.hostname, min_delay_s):
            deadline = time.monotonic() + fetcher.total_timeout_s
            auth = fetcher._credentials.get(_origin(url)) if fetcher._credentials else None
            with _request_deadline(deadline):
                try:
                    resp = session.get(
                        url,
                        headers={"Authorization": auth} if auth else None,
                        timeout=(fetcher.connect_timeout, fetcher.read_timeout),
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
                        body = _read_body(resp, deadline, _ROBOTS_CAP, fetcher.total_timeout_s)
                    except _Failure:
                        return None
                finally:
                    resp.close()
            return RobotsRules(body.decode("utf-8", errors="replace"))
    return None
