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
route handler first (crawlers.browser_routes): images, fonts, media and other hosts' resources are
refused; the private address guard, robots.txt and the politeness interval apply as they do to
plain requests (they share the plain Fetcher's robots cache and per-host clock).

Playwright's sync API belongs to the thread that started it: the browser lives in one thread of its
own and `fetch_page` (called from the observe stage's thread pool) hands it work through a queue.
Browser loads are therefore one at a time, which politeness asks for anyway; plain requests run
in the calling threads, in parallel.

This module holds `BrowserFetcher` itself: its options, Chromium's start-up and the browser
thread, and the cheap-path decisions of `fetch_page`. The parts it is made of live beside it:
crawlers.browser_load (the load of one page in the browser thread, challenges and settling
included, and the cookie hand-over to the plain sessions), crawlers.browser_routes (the route
handler and its rules) and crawlers.browser_pages (what a page's HTML says about its scripts, and
what the fetcher remembers of a host).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .browser_load import _PageLoading
from .browser_pages import _directory, _Host, _may_be_filled_by_script, canonical_or
from .browser_routes import _Load, _RouteHandling
from .discover import canonical_url
from .fetch import DEFAULT_USER_AGENT, Fetcher, FetchResult, _Failure
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


class BrowserFetcher(_PageLoading, _RouteHandling):
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
