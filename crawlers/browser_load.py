"""The browser load of crawlers.browser's `BrowserFetcher`: what runs in the browser thread for one
page, and the cookie hand-over between the browser and the plain requests.

A load opens a page in the shared context, navigates (following redirects hop by hop through the
route handler, crawlers.browser_routes), waits while a JavaScript challenge's script computes its
cookie and reloads, lets scripts that fetch content settle, reads the document, and decides whether
the page was filled by script (crawlers.browser_pages). The cookies it earned (a passed challenge's
clearance) are copied into the plain `Fetcher`'s sessions for the host, and cookies the plain path
received since are copied back before the next load.

The load loop (`_load_in_browser`) is one state machine over Playwright's events (documents,
challenge reloads, script navigations, settling), best read top to bottom; `_navigate`, `_wait_load`
and `_settle` are its steps. `_PageLoading` is a mixin of `BrowserFetcher`, kept here apart from
the fetcher's start-up and cheap-path decisions: the load reads and updates the fetcher's state
(its counters, its per-host knowledge, the route handler's load in progress), which stays in one
object.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .browser_pages import _directory, _fetches_content, _filled_by_script, _Host, canonical_or
from .browser_routes import _Load, _site
from .challenge import ChallengeMatch, classify_challenge
from .encoding import decode_html
from .fetch import MAX_REDIRECTS, Fetcher, FetchResult, _content_type, _Failure

# How long a page whose scripts fetch content is given, at most, to fall quiet (see _settle).
_SETTLE_S = 3.0
_QUIET_S = 0.1  # no request in flight for this long: the page's scripts are done
_POLL_MS = 25


class _PageLoading:
    """The browser load's part of `BrowserFetcher` (see module)."""

    # Set by BrowserFetcher.__init__ and (the context) its _start.
    http: Fetcher
    max_bytes: int
    load_timeout_s: float
    challenge_timeout_s: float
    _lock: threading.Lock
    _load: _Load | None
    _context: Any

    if TYPE_CHECKING:

        def _count(self, what: str) -> None: ...

        def _host(self, host: str) -> _Host: ...

    def _load_in_browser(
        self,
        url: str,
        min_delay_s: float,
        allow_private: bool,
        encoding: str | None,
        result: FetchResult,
        earn_only: bool,
    ) -> None:
        """Runs in the browser thread: load `url`, wait while a challenge reloads the page, read it."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        host = urlsplit(url).hostname or ""
        self._cookies_to_browser(url)
        load = _Load(
            host=host.lower(), site=_site(host), min_delay_s=min_delay_s, allow_private=allow_private
        )
        self._load = load
        page = self._context.new_page()
        documents: list[Any] = []  # main-frame document responses, in order (challenge reloads too)

        def on_response(response: Any) -> None:
            request = response.request
            if request.is_navigation_request() and response.frame == page.main_frame:
                documents.append(response)
                self._count("navigations")

        page.on("response", on_response)
        # Requests in flight, for _settle: Playwright's "networkidle" waits 500 ms of silence after
        # the last one; most pages' scripts are done long before.
        inflight: set[Any] = set()
        page.on("request", lambda request: inflight.add(request))  # (Playwright wants Python functions)
        page.on("requestfinished", lambda request: inflight.discard(request))
        page.on("requestfailed", lambda request: inflight.discard(request))
        deadline = time.monotonic() + self.challenge_timeout_s
        try:
            self._navigate(page, url, load, documents)
            challenged: ChallengeMatch | None = None
            settled = False
            while True:
                if load.redirect_to is not None:  # a script's navigation was redirected
                    self._navigate(page, load.redirect_to, load, documents)
                seen = len(documents)
                self._wait_load(page, deadline)
                if load.failure is not None:
                    raise load.failure
                if load.redirect_to is not None:
                    continue
                if len(documents) != seen:
                    continue  # the page navigated meanwhile: wait for the new document
                if not documents:
                    raise _Failure("connection", "browser: no document was received")
                response = documents[-1]
                try:
                    body = response.body()
                except PlaywrightError:
                    if time.monotonic() > deadline:
                        raise _Failure("challenge", "browser: the page never settled") from None
                    page.wait_for_timeout(100)
                    continue
                headers = response.all_headers()  # .headers leaves out Set-Cookie, which rows read
                _, _, charset = _content_type(headers)
                raw, codec, source, bad = decode_html(body, charset, encoding)
                match = classify_challenge(response.status, headers, raw)
                if match is None:
                    if settled or not _fetches_content(raw):
                        break
                    # Scripts that fetch content: let their requests finish, then read again
                    # (a script may also navigate: that document is then the one read).
                    self._settle(page, inflight, deadline)
                    settled = True
                    continue
                challenged = match
                if time.monotonic() > deadline:
                    raise _Failure("challenge", f"{match.reason}; still there after the browser's reload(s)")
                if documents[-1] is not response:
                    continue  # the script already reloaded
                # The challenge's script computes its cookie and reloads (jiasule waits `wt` ms
                # first): wait for the next document.
                try:
                    page.wait_for_event(
                        "response",
                        predicate=lambda r: r.request.is_navigation_request() and r.frame == page.main_frame,
                        timeout=max(100.0, (deadline - time.monotonic()) * 1000),
                    )
                except PlaywrightTimeout:
                    if documents[-1] is not response:
                        continue
                    raise _Failure(
                        "challenge", f"{match.reason}; the browser's script did not get through"
                    ) from None
            if challenged is not None or load.challenged is not None:
                self._count("challenges_passed")
            self._cookies_from_browser(url)
            status = response.status
            result.status = status
            result.final_url = canonical_or(page.url)
            result.redirects = list(load.redirects)
            result.content_type = headers.get("content-type")
            result.etag = headers.get("etag")
            result.last_modified = headers.get("last-modified")
            result.bytes = len(body)
            if len(body) > self.max_bytes:
                raise _Failure("too_large", f"body over {self.max_bytes} bytes")
            if status in (404, 410):
                result.gone = True
                return
            if status != 200:
                raise _Failure("http", f"HTTP {status}")
            if not body.strip():
                raise _Failure("empty", "empty body")
            rendered = page.content()
            state = self._host(load.host)
            needs_script = _filled_by_script(raw, rendered)
            with self._lock:
                (state.script_dirs if needs_script else state.static_dirs).add(_directory(result.final_url))
                state.cheap = True
            # A page the scripts did not change is returned as served, byte for byte what the plain
            # path returns (a switch of path is then never a change); one they filled, as rendered.
            result.text = rendered if needs_script and not earn_only else raw
            result.encoding, result.encoding_source, result.replacement_chars = codec, source, bad
        finally:
            self._load = None
            page.close()

    def _navigate(self, page: Any, url: str, load: _Load, documents: list[Any]) -> None:
        """page.goto(url), following redirects here: Chromium follows a redirect without asking
        the route handler again, so the handler stops at a redirect (see _route) and the
        target is navigated to, through the handler, hop by hop."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        while True:
            load.redirect_to = None
            try:
                page.goto(url, wait_until="load", timeout=self.load_timeout_s * 1000)
            except PlaywrightTimeout:
                raise _Failure("timeout", f"browser load timeout ({self.load_timeout_s:g} s)") from None
            except PlaywrightError as exc:
                if load.failure is not None:
                    raise load.failure from None
                if load.redirect_to is None and not documents:
                    # No answer at all (a challenge reloading in the middle of goto is fine).
                    raise _Failure("connection", f"browser: {str(exc).splitlines()[0]}") from None
            if load.failure is not None:
                raise load.failure
            target = load.redirect_to
            if target is None:
                return
            load.redirects.append(canonical_or(url))
            if len(load.redirects) >= MAX_REDIRECTS:
                raise _Failure("redirect", f"too many redirects (over {MAX_REDIRECTS})")
            if canonical_or(target) in load.redirects:
                raise _Failure("redirect", "redirect loop")
            url = target

    def _wait_load(self, page: Any, deadline: float) -> None:
        """Wait for the document's load event (bounded)."""
        from playwright.sync_api import Error as PlaywrightError

        left = max(0.1, min(self.load_timeout_s, deadline - time.monotonic()))
        # Navigating away, or a load event that never comes: what is there is read.
        with contextlib.suppress(PlaywrightError):
            page.wait_for_load_state("load", timeout=left * 1000)

    def _settle(self, page: Any, inflight: set[Any], deadline: float) -> None:
        """Let the scripts' requests finish: return once none has been in flight for _QUIET_S
        (the DOM they fill is written by then), after _SETTLE_S at most."""
        end = min(deadline, time.monotonic() + _SETTLE_S)
        quiet_since: float | None = None
        while time.monotonic() < end:
            page.wait_for_timeout(_POLL_MS)  # lets Playwright deliver the request events
            now = time.monotonic()
            if inflight:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= _QUIET_S:
                return

    # -- cookies between the browser and the plain sessions ---------------------------------------

    def _cookies_from_browser(self, url: str) -> list[dict[str, Any]]:
        """Copy the browser's cookies for `url` into the plain sessions of its host (both the
        guarded and the private-allowed one): the cheap path sends them from now on."""
        cookies = self._context.cookies([url])
        netloc = urlsplit(url).netloc
        for guarded in (True, False):
            jar = self.http._session(netloc, guarded).cookies
            for c in cookies:
                jar.set(
                    c["name"],
                    c["value"],
                    domain=c.get("domain", ""),
                    path=c.get("path", "/"),
                    secure=bool(c.get("secure")),
                    expires=int(c["expires"]) if c.get("expires", -1) > 0 else None,
                )
        return cookies

    def _cookies_to_browser(self, url: str) -> None:
        """Cookies the plain path received since (a server refreshing its session) go to the browser."""
        netloc = urlsplit(url).netloc
        hostname = urlsplit(url).hostname or ""
        found = []
        for guarded in (True, False):
            with self.http._lock:
                session = self.http._sessions.get((netloc, guarded))
            if session is None:
                continue
            for c in session.cookies:
                domain = c.domain.lstrip(".")
                if domain and (hostname == domain or hostname.endswith("." + domain)):
                    found.append({"name": c.name, "value": c.value or "", "url": url.split("?", 1)[0]})
        if found:
            self._context.add_cookies(found)
