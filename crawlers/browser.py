"""A fetcher that loads pages in headless Chromium (Debian's, driven by Playwright) for sources with
`fetcher: browser`: scripts run, lists filled by script are read, JavaScript cookie challenges
(加速乐, 瑞数, Alibaba Cloud WAF …) are passed the way a browser passes them.

`BrowserFetcher` has `crawlers.fetch.Fetcher`'s interface (`fetch_page(url, …) -> FetchResult`,
`close()`, context manager), so the pipeline uses either.

The cheap path. A browser load costs tens of milliseconds of CPU and a Chromium renderer; a plain
request costs one. So the browser is started once per fetcher and shared, and used only when
needed:
  - the first page of a host is loaded in the browser; the cookies it earned (a passed challenge's
    clearance) are copied into the plain `Fetcher`'s session for that host, with the browser's
    user agent (some clearances, 瑞数' among them, are computed from it);
  - later pages of the host go over plain HTTP with those cookies, with the plain Fetcher's
    conditional GET, retries, deadlines and pinned-DNS private-address guard, as long as they work;
  - a challenge on the plain path (the clearance expired or was revoked) sends that page back to
    the browser, which earns fresh cookies, copied over again;
  - a page whose rendered DOM shows links or text its HTML does not (a list filled by script) is
    remembered: it, and pages in the same directory, are always loaded in the browser.
Feeds and files (JSON, RSS, dataproxy XML, attachments) always go over plain HTTP; a challenge in
their place is passed in the browser on the same URL, then the plain request is made again.

Every request the browser makes (the document, its redirects, reloads, scripts, XHR …) passes a
route handler first: images, fonts, media and other hosts' resources are refused; the private
address guard (by the host's name and every address it resolves to), robots.txt and the politeness
interval apply as they do to plain requests (they share the plain Fetcher's robots cache and
per-host clock). Chromium resolves names itself once a request is let through, so unlike the plain
path its connection is not pinned to the checked addresses.

Playwright's sync API belongs to the thread that started it: the browser lives in one thread of its
own and `fetch_page` (called from the observe stage's thread pool) hands it work through a queue.
Browser loads are therefore one at a time, which politeness asks for anyway; plain requests run
in the calling threads, in parallel.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from .challenge import ChallengeMatch, classify_challenge, visible_text
from .discover import canonical_url
from .encoding import decode_html
from .fetch import DEFAULT_USER_AGENT, MAX_REDIRECTS, Fetcher, FetchResult, _content_type, _Failure
from .pacing import HostPacer
from .reasons import safe_reason

log = logging.getLogger(__name__)

__all__ = ["CHROMIUM", "BrowserFetcher"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",  # containers and CI run without the user namespaces the sandbox needs
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a small /dev/shm (docker's 64 MB) crashes renderers otherwise
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
)
# Resource types never needed to read a page's text or links.
_BLOCKED_TYPES = frozenset({"image", "font", "media", "texttrack", "eventsource", "websocket", "manifest"})
# How long a page whose scripts fetch content is given, at most, to fall quiet (see _settle).
_SETTLE_S = 3.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_QUIET_S = 0.1  # no request in flight for this long: the page's scripts are done
_POLL_MS = 25
# Second-level labels under which the registrable domain has three labels (miit.gov.cn, not gov.cn).
_SECOND_LEVEL = frozenset({"gov", "com", "org", "net", "edu", "ac", "co"})
_HREF_RE = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)""", re.I)


def _site(host: str) -> str:
    """The registrable domain of `host` (approximately: no public-suffix list): resources on it are
    the site's own; anything else is a third party."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    if all(part.isdigit() for part in labels):  # an IPv4 literal is its own site
        return host
    return ".".join(labels[-2:])


def _directory(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path.rsplit('/', 1)[0]}/"


@dataclass
class _Host:
    """What the fetcher learnt about one host."""

    cheap: bool = False  # the browser passed here and its cookies went to the plain session
    script_dirs: set[str] = field(default_factory=set)  # directories of pages filled by script
    static_dirs: set[str] = field(default_factory=set)  # directories of pages the browser left as served


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


class _BrowserThread:
    """One thread that owns Playwright, the browser and its context, and runs jobs for others."""

    def __init__(self, start: Callable[[], Any]) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._started: Future[Any] = Future()
        self._thread = threading.Thread(target=self._run, args=(start,), name="browser", daemon=True)
        self._thread.start()
        self._started.result()  # a browser that cannot start fails the first fetch loudly

    def _run(self, start: Callable[[], Any]) -> None:
        try:
            stop = start()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                fn, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            try:
                stop()
            except Exception:
                log.debug("stopping the browser failed", exc_info=True)

    def call(self, fn: Callable[[], Any]) -> Any:
        if threading.current_thread() is self._thread:
            return fn()
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def stop(self, timeout: float = 30.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout)


class BrowserFetcher:
    """`Fetcher`'s interface over headless Chromium, with plain HTTP as the cheap path (see module).

    Thread-safe. `stats` counts what happened: `http` (pages answered on the plain path),
    `browser` (pages answered by a browser load), `navigations` (documents the browser received,
    challenge reloads included), `challenges_passed`, `challenges_on_http` (plain answers that
    sent the page back to the browser), `blocked_requests` (refused by the route handler).
    """

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
        executable_path: str = CHROMIUM,
        challenge_timeout_s: float | None = None,
        cheap_path: bool = True,
        pacer: HostPacer | None = None,
    ) -> None:
        self.http = Fetcher(
            user_agent=user_agent,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            max_bytes=max_bytes,
            respect_robots=respect_robots,
            pool_size=pool_size,
            delay_scale=delay_scale,
            pacer=pacer,
        )
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.respect_robots = respect_robots
        self.executable_path = executable_path
        # One load (document, challenge reloads, settling) must end within this.
        self.load_timeout_s = self.http.total_timeout_s
        self.challenge_timeout_s = challenge_timeout_s or max(15.0, self.load_timeout_s)
        self.cheap_path = cheap_path
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}
        self._thread: _BrowserThread | None = None
        self._closed = False
        self._load: _Load | None = None
        self._context: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def _browser(self) -> _BrowserThread:
        with self._lock:
            if self._closed:
                raise RuntimeError("BrowserFetcher is closed")
            if self._thread is None:
                self._thread = _BrowserThread(self._start)
            return self._thread

    def _start(self) -> Callable[[], None]:
        """Runs in the browser thread: Playwright, Chromium, one context shared by every load."""
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        try:
            browser = pw.chromium.launch(
                executable_path=self.executable_path, args=list(CHROMIUM_ARGS), headless=True
            )
            context = browser.new_context(
                user_agent=self.user_agent,
                locale="zh-CN",
                service_workers="block",  # a worker's requests would bypass the route handler
                accept_downloads=False,
                java_script_enabled=True,
            )
            context.set_default_timeout(self.load_timeout_s * 1000)
            context.route("**/*", self._route)
        except BaseException:
            pw.stop()
            raise
        self._context = context

        def stop() -> None:
            try:
                context.close()
                browser.close()
            finally:
                pw.stop()

        return stop

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()
        self.http.close()

    def __enter__(self) -> BrowserFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        """Fetch one page, as `Fetcher.fetch_page` does (same arguments, same result), in the
        browser or on the cheap path. Never raises for what a site does."""
        kwargs: dict[str, Any] = {
            "etag": etag,
            "last_modified": last_modified,
            "min_delay_s": min_delay_s,
            "allow_private": allow_private,
            "encoding": encoding,
        }
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        state = self._host(host)
        if feed or file:
            # Feeds and files are not rendered: plain HTTP, and the browser only to pass a challenge.
            result = self.http.fetch_page(url, feed=feed, file=file, **kwargs)
            if result.error_kind == "challenge" and host:
                self._count("challenges_on_http")
                passed = self._browse(url, min_delay_s, allow_private, encoding, earn_only=True)
                if passed.ok or passed.not_modified:
                    result = self.http.fetch_page(url, feed=feed, file=file, **kwargs)
            self._count("http")
            return result
        directory = _directory(canonical_or(url))
        if self.cheap_path and state.cheap and directory not in state.script_dirs:
            result = self.http.fetch_page(url, **kwargs)
            if result.error_kind == "challenge":
                self._count("challenges_on_http")
                with self._lock:
                    state.cheap = False
            elif not (
                result.ok
                and directory not in state.static_dirs
                and result.text is not None
                and _may_be_filled_by_script(result.text)
            ):
                self._count("http")
                return result
            # else: a page in a directory the browser has not seen whose scripts may fill it in
        return self._browse(url, min_delay_s, allow_private, encoding)

    def _count(self, what: str) -> None:
        with self._lock:  # fetch_page runs in the observe stage's threads
            self.stats[what] += 1

    def _host(self, host: str) -> _Host:
        with self._lock:
            return self._hosts.setdefault(host, _Host())

    # -- the browser load ----------------------------------------------------------------------

    def _browse(
        self, url: str, min_delay_s: float, allow_private: bool, encoding: str | None, earn_only: bool = False
    ) -> FetchResult:
        started = time.monotonic()
        result = FetchResult(url=url, final_url=url)
        try:
            current = canonical_url(url)
        except ValueError:
            result.error, result.error_kind = f"invalid URL: {url}", "scheme"
            return result
        result.final_url = current
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            result.error, result.error_kind = f"unsupported URL: {current}", "scheme"
            return result
        if "@" in parts.netloc:
            # Credentials in the URL would be sent by Chromium to whatever the page loads:
            # such sources stay on the plain fetcher, which scopes them to the origin.
            result.error, result.error_kind = "credentials in a URL are not sent by the browser", "scheme"
            return result
        try:
            self._browser().call(
                lambda: self._load_in_browser(
                    current, min_delay_s, allow_private, encoding, result, earn_only
                )
            )
        except _Failure as failure:
            result.error, result.error_kind = failure.message, failure.kind
            result.text = None
        except Exception as exc:  # Playwright or Chromium trouble: this page's error, never the cycle's
            log.warning(
                "browser load of %s failed: %s", current, exc, exc_info=log.isEnabledFor(logging.DEBUG)
            )
            result.error, result.error_kind = f"browser failed: {type(exc).__name__}: {exc}", "browser"
            result.text = None
        if result.error is not None:
            result.error = safe_reason(result.error)
        else:
            self._count("browser")
        result.elapsed_s = time.monotonic() - started
        result.fetched_at = datetime.now(UTC)
        return result

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

    # -- the route handler: every request the browser makes --------------------------------------

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


def canonical_or(url: str) -> str:
    try:
        return canonical_url(url)
    except ValueError:
        return url


_INLINE_SCRIPT_RE = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
# What a script that fills a page with content calls (XHR, fetch, jQuery's loaders, Hanweb's jpage).
_FILLING_RE = re.compile(
    r"XMLHttpRequest|\bfetch\s*\(|\$\.(?:ajax|get|post|getJSON)\b|\.load\s*\(|document\.write|"
    r"dataproxy|jpage|innerHTML\s*=|insertAdjacentHTML|appendChild",
    re.I,
)


# Of those, what fetches content over the network (the page must then be given time to settle).
_FETCHING_RE = re.compile(
    r"XMLHttpRequest|\bfetch\s*\(|\$\.(?:ajax|get|post|getJSON)\b|\.load\s*\(|dataproxy|jpage", re.I
)


def _fetches_content(html: str) -> bool:
    """Whether a page's scripts fetch content after the load event (XHR, fetch, jQuery, jpage)."""
    for attrs, body in _INLINE_SCRIPT_RE.findall(html):
        if _FETCHING_RE.search(body) or (
            "src" in attrs.lower() and re.search(r"jpage|dataproxy", attrs, re.I)
        ):
            return True
    return False


def _may_be_filled_by_script(html: str) -> bool:
    """Whether a page's own scripts may add content to it (checked on the cheap path's answers
    for directories the browser has not seen yet: such a page goes to the browser once)."""
    for attrs, body in _INLINE_SCRIPT_RE.findall(html):
        if _FILLING_RE.search(body) or (
            "src" in attrs.lower() and re.search(r"jpage|dataproxy", attrs, re.I)
        ):
            return True
    return False


def _filled_by_script(raw: str, rendered: str) -> bool:
    """Whether scripts added links or text to the page (a list filled by XHR, document.write …)."""
    raw_links = set(_HREF_RE.findall(raw))
    if any(link not in raw_links for link in _HREF_RE.findall(rendered)):
        return True
    return len(visible_text(rendered)) > len(visible_text(raw)) + 40
