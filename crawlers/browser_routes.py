"""The route handler of crawlers.browser's Chromium: every request the browser makes (the document,
its redirects, reloads, scripts, XHR …) passes it first.

Images, fonts, media and other hosts' resources are refused; the private address guard (by the
host's name and every address it resolves to), robots.txt and the politeness interval apply as they
do to plain requests (they share the plain Fetcher's robots cache and per-host clock). The request
is then made here, redirects not followed: Chromium would follow one without asking the handler
about its target. Chromium resolves names itself once a request is let through, so unlike the plain
path its connection is not pinned to the checked addresses.

`_RouteHandling` is a mixin of `BrowserFetcher` (its `_route` is what the browser context routes
every request to, in the browser thread); it is kept here, apart from the fetcher's cheap-path
decisions and the load loop, because these are the rules on what the browser may reach. `_Load`
is the load in progress the handler reads and reports back to.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from .challenge import ChallengeMatch, classify_challenge
from .encoding import decode_html
from .fetch import MAX_REDIRECTS, Fetcher, _content_type, _Failure

log = logging.getLogger("crawlers.browser")  # the browser fetcher's records keep their logger

# Resource types never needed to read a page's text or links.
_BLOCKED_TYPES = frozenset({"image", "font", "media", "texttrack", "eventsource", "websocket", "manifest"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Second-level labels under which the registrable domain has three labels (miit.gov.cn, not gov.cn).
_SECOND_LEVEL = frozenset({"gov", "com", "org", "net", "edu", "ac", "co"})


def _site(host: str) -> str:
    """The registrable domain of `host` (approximately: no public-suffix list): resources on it are
    the site's own; anything else is a third party."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    if all(part.isdigit() for part in labels):  # an IPv4 literal is its own site
        return host
    return ".".join(labels[-2:])


@dataclass
class _Load:
    """The parameters of the browser load in progress (one at a time), read by the route handler."""

    host: str
    site: str
    min_delay_s: float
    allow_private: bool
    failure: _Failure | None = None  # why the route handler refused the document itself
    redirect_to: str | None = None  # the document answered with a redirect to this URL
    redirects: list[str] = field(default_factory=list)  # URLs that answered with a redirect, in order
    challenged: ChallengeMatch | None = None  # the last challenge a document of this load was


class _RouteHandling:
    """The route handler's part of `BrowserFetcher` (see module)."""

    # Set by BrowserFetcher.__init__.
    http: Fetcher
    user_agent: str
    respect_robots: bool
    load_timeout_s: float
    _load: _Load | None  # the load in progress, set by the load loop (crawlers.browser_load)

    if TYPE_CHECKING:

        def _count(self, what: str) -> None: ...

    def _route(self, route: Any, request: Any) -> None:
        load = self._load
        url = request.url
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        document = request.is_navigation_request() and request.frame.parent_frame is None
        if load is None or parts.scheme not in ("http", "https") or not host:
            self._refuse(route)
            return
        if not document and (request.resource_type in _BLOCKED_TYPES or _site(host) != load.site):
            self._refuse(route)
            return
        try:
            self._check(url, host, parts, load)
        except _Failure as failure:
            if document:
                load.failure = failure
            self._refuse(route)
            return
        # The request is made here (by Playwright, with the context's cookies), redirects not
        # followed: Chromium would follow one without calling this handler for its target.
        from playwright.sync_api import Error as PlaywrightError

        try:
            response = route.fetch(max_redirects=0, timeout=self.load_timeout_s * 1000)
            hops = 0
            while response.status in _REDIRECTS and response.headers.get("location"):
                target = urljoin(url, response.headers["location"])
                if document:
                    # The load loop navigates to the target, through this handler again.
                    load.redirect_to = target
                    route.abort("aborted")
                    return
                hops += 1
                target_parts = urlsplit(target)
                target_host = (target_parts.hostname or "").lower()
                if (
                    hops > MAX_REDIRECTS
                    or target_parts.scheme not in ("http", "https")
                    or _site(target_host) != load.site
                ):
                    self._refuse(route)
                    return
                self._check(target, target_host, target_parts, load)
                url = target
                response = route.fetch(url=target, max_redirects=0, timeout=self.load_timeout_s * 1000)
        except _Failure:
            self._refuse(route)
            return
        except PlaywrightError as exc:
            log.debug("browser request %s failed: %s", url, exc)
            with contextlib.suppress(PlaywrightError):
                route.abort("failed")
            return
        if document:
            # Seen here, as it arrives: a challenge whose script reloads at once is gone before
            # the load loop looks.
            try:
                _, _, charset = _content_type(response.headers)
                text = decode_html(response.body(), charset)[0]
            except PlaywrightError:
                text = ""
            match = classify_challenge(response.status, response.headers, text)
            if match is not None:
                load.challenged = match
        route.fulfill(response=response)

    def _check(self, url: str, host: str, parts: Any, load: _Load) -> None:
        """The plain Fetcher's rules for one browser request: guard, robots.txt, politeness."""
        if not load.allow_private:
            self.http._check_host(host, False)
        delay = load.min_delay_s
        if self.respect_robots:
            robots = self.http._robots_for(
                f"{parts.scheme}://{parts.netloc}", load.min_delay_s, load.allow_private
            )
            if robots is not None:
                if not robots.can_fetch(self.user_agent, url):
                    raise _Failure("robots", "robots.txt disallows")
                crawl_delay = robots.crawl_delay(self.user_agent)
                if crawl_delay:
                    delay = max(delay, min(float(crawl_delay), 30.0))
        self.http._wait_turn(host, delay)

    def _refuse(self, route: Any) -> None:
        self._count("blocked_requests")
        route.abort("blockedbyclient")
