"""One cycle: discover → fetch → extract/normalise → version → diff → classify (→ alert).

Plain functions: the CLI and the Airflow DAGs call the same ones. Fetches run in a small thread
pool (network-bound); everything after the fetch runs on the calling thread, one transaction per
document, so a crash never leaves half an observation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crawlers import Fetcher, FetchResult, canonical_url, discover_links, is_private_address
from extraction import ExtractionError, extract_document, is_not_found_page
from policywatch.classify import diff_versions, make_event
from policywatch.config import Config, Settings, SourceConfig
from storage import store
from storage.db import ensure_schema, session_factory, unit_of_work
from storage.models import DocumentVersion, Source, utcnow

log = logging.getLogger(__name__)

# How many fetched pages may wait for processing per worker: bounds memory on large sources.
IN_FLIGHT_PER_WORKER = 4


@dataclass
class CycleSummary:
    sources: int = 0
    documents_seen: int = 0
    fetched: int = 0
    not_modified: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    restored: int = 0
    republished: int = 0
    baseline: int = 0
    errors: int = 0
    alerts_sent: int = 0
    alerts_pending: int = 0
    succeeded: int = 0  # documents checked without a fetch error (304s and removals included)
    failures: list[dict[str, str]] = field(default_factory=list)
    # Seconds spent per stage on the processing thread (fetch: summed request time of the workers).
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def add(self, other: CycleSummary) -> None:
        for name, value in asdict(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        self.failures.extend(other.failures)
        for stage, seconds in other.stage_seconds.items():
            self.time(stage, seconds)

    def time(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def fail(self, source_id: str, url: str, error: str) -> None:
        self.errors += 1
        self.failures.append({"source": source_id, "url": url, "error": error})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage_seconds"] = {k: round(v, 4) for k, v in self.stage_seconds.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CycleSummary:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Target:
    url: str
    document_id: int | None = None
    etag: str | None = None
    last_modified: str | None = None


def make_fetcher(settings: Settings) -> Fetcher:
    kwargs: dict[str, object] = {
        "connect_timeout": settings.connect_timeout_s,
        "read_timeout": settings.read_timeout_s,
        "max_attempts": settings.max_attempts,
        "backoff_base_s": settings.backoff_base_s,
        "max_bytes": settings.max_body_bytes,
        "respect_robots": settings.respect_robots,
    }
    if settings.user_agent:
        kwargs["user_agent"] = settings.user_agent
    return Fetcher(**kwargs)  # type: ignore[arg-type]


def allows_private(source: SourceConfig) -> bool:
    """Private/loopback targets are allowed only for a source configured on such an address."""
    if source.allow_private is not None:
        return source.allow_private
    return any(is_private_address(urlsplit(url).hostname or "") for url in source.configured_urls)


def run_cycle(
    config: Config,
    engine: Engine,
    source_ids: Sequence[str] | None = None,
    fetcher: Fetcher | None = None,
) -> CycleSummary:
    """Run every selected source once; the database must be reachable (else DBAPIError propagates)."""
    ensure_schema(engine)
    factory = session_factory(engine)
    sources = [config.source(s) for s in source_ids] if source_ids else list(config.sources)
    own_fetcher = fetcher is None
    fetcher = fetcher or make_fetcher(config.settings)
    summary = CycleSummary()
    try:
        for source in sources:
            summary.add(run_source(source, config, factory, fetcher))
    finally:
        if own_fetcher:
            fetcher.close()
    return summary


@dataclass
class SourcePlan:
    """What one source's cycle will check: discovery's result, JSON-able for Airflow's XCom."""

    source_id: str
    silent: bool  # the source has no baseline yet: record documents without events
    known: list[Target]  # documents already in the store (checked first: see run_source)
    new_urls: list[str]  # discovered URLs not known yet
    summary: CycleSummary  # what discovery itself did (listing errors)

    def to_json(self) -> dict[str, object]:
        return {
            "source_id": self.source_id,
            "silent": self.silent,
            "known": [asdict(t) for t in self.known],
            "new_urls": self.new_urls,
            "summary": self.summary.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourcePlan:
        return cls(
            source_id=data["source_id"],
            silent=data["silent"],
            known=[Target(**t) for t in data["known"]],
            new_urls=list(data["new_urls"]),
            summary=CycleSummary.from_json(data["summary"]),
        )


def run_source(
    source: SourceConfig,
    config: Config,
    factory: sessionmaker[Session],
    fetcher: Fetcher,
) -> CycleSummary:
    plan = plan_source(source, config, factory, fetcher)
    summary = CycleSummary(sources=1)
    summary.add(plan.summary)
    # Known documents first, so a document that moved (its old URL redirects to one the listing now
    # shows) keeps its history before the new URL could be taken for a new document.
    summary.add(process_targets(source, factory, fetcher, plan.known, plan.silent))
    fresh = unknown_targets(factory, source.id, plan.new_urls)
    summary.add(process_targets(source, factory, fetcher, fresh, plan.silent))
    finish_source(factory, source.id, succeeded=summary.succeeded > 0)
    log.info(
        "source %s: %d seen, %d fetched, %d not modified, %d unchanged, %d new, %d changed, %d removed, %d errors",
        source.id,
        summary.documents_seen,
        summary.fetched,
        summary.not_modified,
        summary.unchanged,
        summary.new,
        summary.changed,
        summary.removed,
        summary.errors,
    )
    return summary


def plan_source(
    source: SourceConfig, config: Config, factory: sessionmaker[Session], fetcher: Fetcher
) -> SourcePlan:
    """Discover: read the listings and decide which documents this cycle checks."""
    summary = CycleSummary()
    with unit_of_work(factory) as session:
        src = store.ensure_source(session, source.id, source.name)
        silent = src.baseline_at is None and not config.settings.first_run_alerts
        known = store.known_documents(session, source.id)
        previous_links = src.last_listing_links

    discovered = discover(source, fetcher, factory, summary, allows_private(source), previous_links)
    wanted = [canonical_url(u) for u in source.pages] + discovered
    known_targets: dict[int, Target] = {}
    for doc in known.values():
        known_targets.setdefault(doc.id, Target(doc.url, doc.id, doc.etag, doc.last_modified))
    new_urls = [u for u in dict.fromkeys(wanted) if u not in known]
    if source.max_documents is not None:
        new_urls = new_urls[: max(0, source.max_documents - len(known_targets))]
    summary.documents_seen = len(known_targets) + len(new_urls)
    return SourcePlan(source.id, silent, list(known_targets.values()), new_urls, summary)


def unknown_targets(factory: sessionmaker[Session], source_id: str, urls: Sequence[str]) -> list[Target]:
    """The URLs that are still not any document's (a moved document may have claimed some)."""
    with factory() as session:
        known_now = store.known_documents(session, source_id)
    return [Target(u) for u in urls if u not in known_now]


def process_targets(
    source: SourceConfig,
    factory: sessionmaker[Session],
    fetcher: Fetcher,
    targets: Iterable[Target],
    silent: bool,
) -> CycleSummary:
    """Fetch, extract, version, diff and classify a batch of documents of one source."""
    summary = CycleSummary()
    processor = DocumentProcessor(source, factory, summary, silent)
    fetch_all(fetcher, source, targets, processor.process, allows_private(source), summary)
    return summary


def finish_source(factory: sessionmaker[Session], source_id: str, *, succeeded: bool) -> None:
    """Close a source's cycle: the first cycle that reached any document ends its baseline."""
    with unit_of_work(factory) as session:
        src = session.get(Source, source_id)
        if src is None:
            return
        now = utcnow()
        src.last_run_at = now
        if succeeded:
            src.last_success_at = now
            if src.baseline_at is None:
                src.baseline_at = now


def discover(
    source: SourceConfig,
    fetcher: Fetcher,
    factory: sessionmaker[Session],
    summary: CycleSummary,
    allow_private: bool,
    previous_links: int | None,
) -> list[str]:
    """Fetch the listing pages and return the document URLs they link to (canonical, in order)."""
    if not source.listing_urls:
        return []
    links: list[str] = []
    listing_failed = False
    for listing_url in source.listing_urls:
        started = time.perf_counter()
        result = fetcher.fetch_page(
            listing_url, min_delay_s=source.min_delay_s, allow_private=allow_private, encoding=source.encoding
        )
        summary.time("fetch", time.perf_counter() - started)
        with unit_of_work(factory) as session:
            store.record_attempt(session, source.id, None, result, "listing" if result.ok else "error")
        if not result.ok:
            listing_failed = True
            reason = result.error or (f"HTTP {result.status}" if result.status else "no answer")
            summary.fail(source.id, listing_url, f"listing: {reason}")
            continue
        assert result.text is not None and source.link_pattern is not None
        links.extend(discover_links(result.text, result.final_url, source.link_pattern))
    links = list(dict.fromkeys(links))
    if not listing_failed:
        if not links and previous_links:
            # A listing that suddenly lists nothing is broken (a redesign, an error page): a source
            # error, never a reason to think its documents are gone.
            summary.fail(
                source.id, source.listing_urls[0], "listing: no document links found (it had some before)"
            )
        else:
            with unit_of_work(factory) as session:
                src = session.get(Source, source.id)
                if src is not None:
                    src.last_listing_links = len(links)
    return links


def fetch_all(
    fetcher: Fetcher,
    source: SourceConfig,
    targets: Iterable[Target],
    process: Callable[[Target, FetchResult], None],
    allow_private: bool,
    summary: CycleSummary,
) -> None:
    """Fetch targets on a thread pool and process each result on this thread, with bounded memory."""
    targets = iter(targets)
    workers = max(1, source.concurrency)
    window = workers * IN_FLIGHT_PER_WORKER

    def fetch(target: Target) -> FetchResult:
        return fetcher.fetch_page(
            target.url,
            etag=target.etag,
            last_modified=target.last_modified,
            min_delay_s=source.min_delay_s,
            allow_private=allow_private,
            encoding=source.encoding,
        )

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"fetch-{source.id}") as pool:
        in_flight: dict[Future[FetchResult], Target] = {}

        def fill() -> None:
            while len(in_flight) < window:
                target = next(targets, None)
                if target is None:
                    return
                future = pool.submit(fetch, target)
                in_flight[future] = target

        fill()
        while in_flight:
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in done:
                target = in_flight.pop(future)
                result = future.result()
                summary.time("fetch", result.elapsed_s)
                process(target, result)
            fill()


class DocumentProcessor:
    """Everything after the fetch for one document, in one transaction."""

    def __init__(
        self, source: SourceConfig, factory: sessionmaker[Session], summary: CycleSummary, silent: bool
    ):
        self.source = source
        self.factory = factory
        self.summary = summary
        self.silent = silent

    def process(self, target: Target, result: FetchResult) -> None:
        try:
            with unit_of_work(self.factory) as session:
                self._process(session, target, result)
        except (OperationalError, DBAPIError):
            raise  # the database is gone: the cycle stops, the next one catches up
        except Exception as exc:  # a bug on one page must not stop the other pages
            log.exception("processing %s failed", target.url)
            with unit_of_work(self.factory) as session:
                store.record_attempt(
                    session,
                    self.source.id,
                    target.document_id,
                    result,
                    "error",
                    error=f"processing failed: {type(exc).__name__}: {exc}",
                    error_kind="internal",
                )
            self.summary.fail(self.source.id, target.url, f"processing failed: {type(exc).__name__}: {exc}")

    def _process(self, session: Session, target: Target, result: FetchResult) -> None:
        source_id, summary = self.source.id, self.summary
        if result.error:
            store.record_attempt(session, source_id, target.document_id, result, "error")
            summary.fail(source_id, target.url, result.error)
            return
        if result.not_modified:
            self.summary.succeeded += 1
            summary.not_modified += 1
            if target.document_id is not None:
                store.touch_not_modified(session, target.document_id, result)
            store.record_attempt(session, source_id, target.document_id, result, "not_modified")
            return
        if result.ok:
            summary.fetched += 1
        started = time.thread_time()
        not_found = result.gone or (result.ok and is_not_found_page(result.text or ""))
        if not_found:
            self._gone(session, target, result)
            return
        if not result.ok:
            store.record_attempt(
                session,
                source_id,
                target.document_id,
                result,
                "error",
                error=f"HTTP {result.status}",
                error_kind="http",
            )
            summary.fail(source_id, target.url, f"HTTP {result.status}")
            return
        try:
            content = extract_document(result.text or "", result.final_url, self.source.content_selector)
        except ExtractionError as exc:
            summary.time("extract", time.thread_time() - started)
            store.record_attempt(
                session,
                source_id,
                target.document_id,
                result,
                "error",
                error=f"extraction: {exc}",
                error_kind="extract",
            )
            summary.fail(source_id, target.url, f"extraction: {exc}")
            return
        extracted = time.thread_time()
        summary.time("extract", extracted - started)
        outcome = store.record_content(
            session, source_id, target.document_id, result, content, result.text or "", result.encoding
        )
        versioned = time.thread_time()
        summary.time("version", versioned - extracted)
        self.summary.succeeded += 1
        kind = self._classify(session, outcome)
        store.record_attempt(session, source_id, outcome.document.id, result, kind)
        summary.time("diff", time.thread_time() - versioned)

    def _classify(self, session: Session, outcome: store.ContentOutcome) -> str:
        summary, doc = self.summary, outcome.document
        events = []
        if outcome.kind == "first":
            if self.silent:
                summary.baseline += 1
                return "baseline"
            original = store.document_with_text(session, outcome.new_version.content_hash, doc.id)
            if original is not None:
                doc.republished_of_id = original.id
                events.append(
                    make_event(
                        "republished",
                        doc,
                        old_version=None,
                        new_version=outcome.new_version,
                        original=original,
                    )
                )
                summary.republished += 1
                kind = "republished"
            else:
                events.append(make_event("new", doc, old_version=None, new_version=outcome.new_version))
                summary.new += 1
                kind = "new"
        elif outcome.kind == "changed":
            assert outcome.old_version is not None
            diff = diff_versions(outcome.old_version, outcome.new_version)
            if outcome.was_removed:
                events.append(
                    make_event(
                        "restored",
                        doc,
                        old_version=outcome.old_version,
                        new_version=outcome.new_version,
                        diff=diff,
                    )
                )
                summary.restored += 1
            events.append(
                make_event(
                    "changed",
                    doc,
                    old_version=outcome.old_version,
                    new_version=outcome.new_version,
                    diff=diff,
                )
            )
            summary.changed += 1
            kind = "changed"
        else:
            if outcome.was_removed:
                events.append(
                    make_event(
                        "restored", doc, old_version=outcome.old_version, new_version=outcome.new_version
                    )
                )
                summary.restored += 1
                kind = "restored"
            else:
                summary.unchanged += 1
                kind = "unchanged"
        if self.silent:
            return kind
        for event in events:
            store.add_event(session, event)
        return kind

    def _gone(self, session: Session, target: Target, result: FetchResult) -> None:
        source_id, summary = self.source.id, self.summary
        if target.document_id is None:
            # A listed link that answers "not found": the listing is stale, not a removal.
            store.record_attempt(
                session, source_id, None, result, "error", error="listed link is not found", error_kind="gone"
            )
            summary.fail(source_id, target.url, "listed link is not found")
            return
        self.summary.succeeded += 1
        doc = store.mark_removed(session, target.document_id, result)
        store.record_attempt(session, source_id, target.document_id, result, "removed")
        if doc is None:
            return
        summary.removed += 1
        if not self.silent:
            current = session.get(DocumentVersion, doc.current_version_id) if doc.current_version_id else None
            store.add_event(session, make_event("removed", doc, old_version=current, new_version=None))
