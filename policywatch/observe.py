"""The observe stage: fetch a document's page and read it (decode, extract, normalise). No database.

This is where a cycle's CPU goes (HTTP, decoding, parsing), so it runs apart from the version stage,
which consumes `Observation`s on the calling thread:

- on a thread pool in this process (fetches overlap; the GIL serialises the parsing), or
- for a source with no politeness delay, also in a process per core (`settings.processes`): each
  worker process has its own Fetcher whose delays are scaled by the number of processes, so the
  host sees the pace one process would keep.

A page whose fingerprint (extraction.equivalence) matches the one its current version was read from
is not extracted at all: it is the current version seen again, whatever its counters and sidebars say.
The fingerprint kept with a version is learned from its extraction: the evidence extraction read
(its containers, title candidates, metadata) when this module's reading of the page chose the same
containers, else the whole page.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING

from crawlers import Fetcher, FetchResult
from crawlers.pacing import FilePacer, HostPacer, LocalPacer
from policywatch.citations import FoundReferences
from policywatch.extraction.equivalence import fingerprint_like, learned_fingerprint, page_fingerprint
from storage.raw import PackedPage, pack_page

if TYPE_CHECKING:
    from policywatch.config import Settings, SourceConfig
    from policywatch.extraction import ExtractedDocument

log = logging.getLogger(__name__)

# How many fetched pages may wait for the version stage per worker: bounds memory on large sources.
IN_FLIGHT_PER_WORKER = 4
# Targets per task sent to a worker process: amortises each task's inter-process round trip.
CHUNK = 16
# Waiting this long for an observation, the version stage commits its open batch first.
IDLE_AFTER_S = 0.2
# Below this many targets, starting worker processes costs more than it saves.
MIN_TARGETS_FOR_PROCESSES = 64


@dataclass(frozen=True)
class Target:
    """A page to check: a known document (its id and what its last fetch left) or a new URL."""

    url: str
    document_id: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    # page_fingerprint of the page the document's current version was read from (active documents).
    fingerprint: str | None = None


@dataclass
class Observation:
    """What the observe stage saw of one target."""

    target: Target
    fetch: FetchResult
    content: ExtractedDocument | None = None  # the page read, when it had to be
    fingerprint: str | None = None  # the page's fingerprint (None: no fast path for this page)
    same_page: bool = False  # same fingerprint as the current version's page: nothing to read
    not_found: bool = False  # 404/410, or a "not found" page served with status 200
    extraction_error: str | None = None
    internal_error: str | None = None  # reading the page raised (a bug): recorded, the cycle goes on
    packed: PackedPage | None = None  # the page as the store keeps it (packed here: CPU work)
    # The references the text cites (policywatch.citations), found here (CPU work, a regex pass
    # over the whole text) for the version stage's record_references.
    references: FoundReferences | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)  # stage -> CPU seconds of the observing thread


def observe_page(fetcher: Fetcher, source: SourceConfig, target: Target, allow_private: bool) -> Observation:
    """Fetch `target` and read the page (never raises for a bad page: see Observation)."""
    started = time.thread_time()
    result = fetcher.fetch_page(
        target.url,
        etag=target.etag,
        last_modified=target.last_modified,
        min_delay_s=source.min_delay_s,
        allow_private=allow_private,
        encoding=source.encoding,
    )
    fetched = time.thread_time()
    seen = Observation(target, result, cpu_s={"fetch": fetched - started})
    if result.error or result.not_modified:
        return seen
    if result.gone:
        seen.not_found = True
        return seen
    if not result.ok:
        return seen
    try:
        _read(seen, source, result.text or "")
    except Exception as exc:  # a bug on one page must not stop the other pages
        log.exception("reading %s failed", target.url)
        seen.internal_error = f"processing failed: {type(exc).__name__}: {exc}"
        seen.content = seen.packed = None
        seen.same_page = seen.not_found = False
    seen.cpu_s["extract"] = time.thread_time() - fetched
    return seen


def _read(seen: Observation, source: SourceConfig, html: str) -> None:
    """Fingerprint the fetched page and, unless it is the current version's page, extract it."""
    result, target = seen.fetch, seen.target
    # With a configured selector extraction reads one element: chrome rules do not describe it.
    computed: str | None = None
    if not source.content_selector and target.fingerprint is not None:
        # The evidence the document's current version was read from (extraction.equivalence): the
        # same again means the same title and paragraphs, whatever the rest of the page says.
        computed = page_fingerprint(html)
        if (
            fingerprint_like(html, target.fingerprint, computed) == target.fingerprint
            and result.final_url == target.url  # a move takes the full path
        ):
            # Not a "not found" page either (checked first for a page that is read in full).
            seen.fingerprint = target.fingerprint
            seen.same_page = True
            seen.fetch = replace(result, text=None)  # the version stage needs none of it
            return
    # BeautifulSoup is imported by the first page that is read in full, not by every cycle.
    from policywatch.extraction.document import ExtractionError, extract_document, is_not_found_page

    if is_not_found_page(html):
        seen.not_found = True
        return
    try:
        seen.content = extract_document(html, result.final_url, source.content_selector)
    except ExtractionError as exc:
        seen.extraction_error = str(exc)
        return
    if not source.content_selector:
        if computed is None:
            page_fingerprint(html)  # the parse learned_fingerprint reuses
        # What this extraction read, for the next fetch of the page (one parse: reused).
        seen.fingerprint = learned_fingerprint(html, seen.content)
    # CPU work the version stage would otherwise do on its single thread: computed here, the
    # cached values travel with the observation.
    _ = seen.content.normalised_paragraphs, seen.content.content_hash
    seen.references = FoundReferences.of(seen.content.text, seen.content.title, seen.content.doc_number)
    seen.packed = pack_page(html)


def make_fetcher(
    settings: Settings,
    delay_scale: float = 1.0,
    source: SourceConfig | None = None,
    pacer: HostPacer | None = None,
) -> Fetcher:
    """The Fetcher `settings` describe (`delay_scale`: see Fetcher; one per worker process); for a
    source with `fetcher: browser`, a crawlers.browser.BrowserFetcher with the same options
    (headless Chromium, whose cookies plain requests reuse while they work). `pacer`: whose turn
    it is at each host (`shared_pacer`: across processes and workers), else this process's."""
    kwargs: dict[str, object] = {
        "pacer": pacer,
        "delay_scale": delay_scale,
        "connect_timeout": settings.connect_timeout_s,
        "read_timeout": settings.read_timeout_s,
        "max_attempts": settings.max_attempts,
        "backoff_base_s": settings.backoff_base_s,
        "max_bytes": settings.max_body_bytes,
        "respect_robots": settings.respect_robots,
    }
    if settings.user_agent:
        kwargs["user_agent"] = settings.user_agent
    if source is not None and source.fetcher == "browser":
        from crawlers.browser import BrowserFetcher

        return BrowserFetcher(**kwargs)  # type: ignore[arg-type,return-value]
    return Fetcher(**kwargs)  # type: ignore[arg-type]


def shared_pacer(database_url: str) -> HostPacer:
    """The politeness every process using the store at `database_url` shares: PostgreSQL's
    host_turns rows (every worker of a deployment), a SQLite file's lock files beside it (every
    process of the machine), else this process's own."""
    from sqlalchemy.engine import make_url

    parsed = make_url(database_url)
    if parsed.get_backend_name() == "postgresql":
        from storage.host_turns import PostgresPacer

        return PostgresPacer(database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return FilePacer(f"{parsed.database}.turns")
    return LocalPacer()


def use_processes(settings: Settings, source: SourceConfig, targets: int) -> int:
    """How many worker processes to read `targets` pages of `source` with (1: none, this process)."""
    wanted = settings.processes if settings.processes is not None else (os.cpu_count() or 1)
    if source.fetcher == "browser":
        return 1  # worker processes would build plain fetchers: the browser's cookies live here
    if wanted <= 1 or source.min_delay_s > 0 or targets < MIN_TARGETS_FOR_PROCESSES:
        return 1
    return min(wanted, targets // CHUNK or 1)


def observe_all(
    fetcher: Fetcher,
    source: SourceConfig,
    targets: Iterable[Target],
    allow_private: bool,
    *,
    settings: Settings | None = None,
    processes: int = 1,
) -> Iterator[Observation | None]:
    """Observations of `targets`, in completion order, with a bounded number in flight; None
    whenever none has come for IDLE_AFTER_S (the version stage then commits what it holds, so a
    slow page never keeps the database's write lock)."""
    if processes > 1 and settings is not None:
        yield from _observe_in_processes(source, targets, allow_private, settings, processes)
        return
    workers = max(1, source.concurrency)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"observe-{source.id}") as pool:
        yield from _bounded(
            ([t] for t in targets),
            lambda batch: pool.submit(lambda: [observe_page(fetcher, source, batch[0], allow_private)]),
            workers * IN_FLIGHT_PER_WORKER,
        )


def _bounded(
    batches: Iterable[list[Target]],
    submit: Callable[[list[Target]], Future[list[Observation]]],
    window: int,
) -> Iterator[Observation | None]:
    """Submit batches, at most `window` at once, yielding their observations as they complete, and
    None when none has come for IDLE_AFTER_S (a slow page, a politeness delay)."""
    batches = iter(batches)
    in_flight: set[Future[list[Observation]]] = set()
    try:
        while True:
            while len(in_flight) < window:
                batch = next(batches, None)
                if batch is None:
                    break
                in_flight.add(submit(batch))
            if not in_flight:
                return
            done, in_flight = wait(in_flight, timeout=IDLE_AFTER_S, return_when=FIRST_COMPLETED)
            if not done:
                yield None  # nothing for a while: the caller ends what it holds before waiting on
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                yield from future.result()
    finally:
        for future in in_flight:
            future.cancel()


# --- worker processes ---------------------------------------------------------------------------------


class _Worker:
    """A worker process's state: its own Fetcher (sockets are not shared across a fork) and threads."""

    fetcher: Fetcher | None = None
    threads: ThreadPoolExecutor | None = None


def _start_worker(settings: Settings, processes: int, threads: int) -> None:
    # Die with the parent: a killed cycle must not leave its workers waiting on a dead queue.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    _Worker.fetcher = make_fetcher(settings, delay_scale=processes)
    _Worker.threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="observe")


def _observe_chunk(source: SourceConfig, targets: list[Target], allow_private: bool) -> list[Observation]:
    assert _Worker.fetcher is not None and _Worker.threads is not None
    fetcher = _Worker.fetcher
    return list(_Worker.threads.map(lambda t: observe_page(fetcher, source, t, allow_private), targets))


def _chunks(targets: Iterable[Target], size: int) -> Iterator[list[Target]]:
    it = iter(targets)
    while chunk := list(islice(it, size)):
        yield chunk


def _observe_in_processes(
    source: SourceConfig, targets: Iterable[Target], allow_private: bool, settings: Settings, processes: int
) -> Iterator[Observation | None]:
    threads = max(1, source.concurrency // processes)
    # fork: the workers start in milliseconds with every module already imported. They use nothing
    # of the parent's but the configuration (no database connection, no socket).
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=context,
        initializer=_start_worker,
        initargs=(settings, processes, threads),
    ) as pool:
        yield from _bounded(
            _chunks(targets, CHUNK),
            lambda chunk: pool.submit(_observe_chunk, source, chunk, allow_private),
            processes * 2,
        )
