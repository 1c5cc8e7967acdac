"""Diffs for the diff page and /api/diff: computed once per pair of versions, on a thread of their
own, and never longer than a bounded wait for the request that asked.

The page used to diff the two versions on every request, on a request thread: 25 s for a 3.4 MiB
document, and a few such requests held every thread of the process. Now:

- a cache in the process, least recently used first out, keyed by the pair of version ids and
  what was diffed (content hashes and titles: a version rewritten by `policywatch reextract` is
  diffed again), bounded by entries and by the characters of the texts it holds;
- one computation per pair at a time (requests for a pair being computed wait for that one);
- computed by `diff_threads` threads of their own (one by default), never by a request thread, with
  at most `diff_pending` distinct pairs computing or waiting per process (more: 503 at once);
- a request waits at most `diff_wait_s` seconds, without holding its admission slot, then gets 503
  with Retry-After while the computation goes on; the page asks again and finds it in the cache.

The cache is per process: `policywatch web` runs one process per core, so a pair is computed at
most once in each (the diff is a pure function of the two texts: no database table is needed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from policywatch.policydiff import DocumentDiff
from policywatch.web.admission import without_slot
from policywatch.web.diffview import DiffRow, diff_rows
from policywatch.web.limits import WebLimits
from policywatch.web.store import Store
from storage.models import DocumentVersion
from storage.queries import document_detail, get_version

log = logging.getLogger(__name__)

DiffKey = tuple[int, int, str, str, str, str]
# A request asked to come back waits again (up to diff_wait_s) for the same computation: asking
# soon costs nothing but a cache look-up.
RETRY_AFTER_S = 2


@dataclass(frozen=True)
class ComputedDiff:
    diff: DocumentDiff
    rows: tuple[DiffRow, ...]  # the page's sentence rows, before folding
    weight: int  # characters of both texts


@dataclass(frozen=True)
class Pair:
    """Two versions read from the store, detached from their session (their columns loaded)."""

    old: DocumentVersion
    new: DocumentVersion
    document: dict[str, Any] | None

    @property
    def key(self) -> DiffKey:
        o, n = self.old, self.new
        return (o.id, n.id, o.content_hash, n.content_hash, o.title, n.title)


def load_pair(store: Store, old_id: int, new_id: int, *, with_document: bool = False) -> Pair:
    """Both versions (404 naming the missing ones), and the new one's document for the page."""
    with store.session() as session:
        old, new = get_version(session, old_id), get_version(session, new_id)
        missing = [str(i) for i, v in ((old_id, old), (new_id, new)) if v is None]
        if missing:
            raise HTTPException(status_code=404, detail=f"no version {', '.join(missing)}")
        assert old is not None and new is not None
        document = document_detail(session, new.document_id) if with_document else None
        # Closing the session detaches the versions with their columns loaded (no rollback: that
        # would expire them).
    return Pair(old, new, document)


def _compute(old: DocumentVersion, new: DocumentVersion) -> ComputedDiff:
    from policywatch.classify import diff_versions

    diff = diff_versions(old, new)
    rows = tuple(diff_rows(diff))
    return ComputedDiff(diff, rows, len(old.normalized_text or "") + len(new.normalized_text or ""))


class _Threads:
    """A few daemon threads taking jobs in order (a process that stops does not wait for a diff)."""

    def __init__(self, count: int, name: str) -> None:
        self.count = max(1, count)
        self.name = name
        self.jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]] = (
            queue.SimpleQueue()
        )
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def submit(self, job: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self.lock:
            while len(self.threads) < self.count:
                thread = threading.Thread(
                    target=self._run, name=f"{self.name}-{len(self.threads)}", daemon=True
                )
                thread.start()
                self.threads.append(thread)
        self.jobs.put((future, job))
        return future

    def _run(self) -> None:
        while True:
            future, job = self.jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the requests that wait for it
                future.set_exception(exc)


class DiffBusy(HTTPException):
    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(status_code=503, detail=detail, headers={"Retry-After": str(retry_after_s)})


class DiffCache:
    def __init__(
        self,
        limits: WebLimits,
        compute: Callable[[DocumentVersion, DocumentVersion], ComputedDiff] = _compute,
    ) -> None:
        self.limits = limits
        self.compute = compute
        self.lock = threading.Lock()
        self.entries: OrderedDict[DiffKey, ComputedDiff] = OrderedDict()
        self.weight = 0
        self.inflight: dict[DiffKey, concurrent.futures.Future[ComputedDiff]] = {}
        self.threads = _Threads(limits.diff_threads, "policywatch-diff")
        self.waiting = 0
        self.computed = 0  # computations started (for tests and logs)

    def cached(self, key: DiffKey) -> ComputedDiff | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def _store(self, key: DiffKey, entry: ComputedDiff) -> None:
        with self.lock:
            self.inflight.pop(key, None)
            if entry.weight > self.limits.diff_cache_chars:
                return  # larger than the whole cache: served once, not kept
            old = self.entries.pop(key, None)
            if old is not None:
                self.weight -= old.weight
            self.entries[key] = entry
            self.weight += entry.weight
            while self.entries and (
                self.weight > self.limits.diff_cache_chars
                or len(self.entries) > self.limits.diff_cache_entries
            ):
                _, evicted = self.entries.popitem(last=False)
                self.weight -= evicted.weight

    def _job(self, key: DiffKey, pair: Pair) -> ComputedDiff:
        try:
            entry = self.compute(pair.old, pair.new)
        except BaseException:
            with self.lock:
                self.inflight.pop(key, None)
            log.exception("policywatch web: diff of versions %s and %s failed", key[0], key[1])
            raise
        self._store(key, entry)
        return entry

    def _future(self, pair: Pair) -> concurrent.futures.Future[ComputedDiff]:
        key = pair.key
        with self.lock:
            future = self.inflight.get(key)
            if future is not None:
                return future
            done = self.entries.get(key)  # finished since the caller looked
            if done is not None:
                future = concurrent.futures.Future()
                future.set_result(done)
                return future
            if len(self.inflight) >= self.limits.diff_pending:
                raise DiffBusy("Other differences are being computed: retry in a moment.", RETRY_AFTER_S)
            future = self.threads.submit(lambda: self._job(key, pair))
            self.inflight[key] = future
            self.computed += 1
            return future

    async def get(self, request: Request, pair: Pair) -> ComputedDiff:
        """The pair's diff: from the cache, or computed (waiting at most diff_wait_s, slot given back)."""
        entry = self.cached(pair.key)
        if entry is not None:
            return entry
        future = self._future(pair)
        if self.waiting >= self.limits.diff_waiters:
            raise DiffBusy("Too many requests are waiting for differences: retry in a moment.", RETRY_AFTER_S)
        self.waiting += 1
        try:
            waited = asyncio.shield(asyncio.wrap_future(future))
            return await without_slot(request, asyncio.wait_for(waited, self.limits.diff_wait_s))
        except TimeoutError:
            raise DiffBusy(
                "The difference between these versions is being computed: this page will be ready in a "
                "moment. 正在计算差异，请稍候。",
                RETRY_AFTER_S,
            ) from None
        finally:
            self.waiting -= 1


async def diff_of(
    request: Request, old_id: int, new_id: int, *, with_document: bool = False
) -> tuple[Pair, ComputedDiff]:
    """Load two versions (on a request thread) and get their diff (never on a request thread)."""
    store: Store = request.app.state.store
    pair = await run_in_threadpool(load_pair, store, old_id, new_id, with_document=with_document)
    cache: DiffCache = request.app.state.diffs
    return pair, await cache.get(request, pair)
