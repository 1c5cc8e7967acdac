"""One cycle: discover → fetch → extract/normalise → version → diff → classify (→ alert).

Plain functions: the CLI and the Airflow DAGs call the same ones. Fetches run in a small thread
pool (network-bound); everything after the fetch runs on the calling thread, one transaction per
document, so a crash never leaves half an observation.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from alerts.deliver import deliver_after_cycle
from alerts.subscriptions import ActiveSubscriber, active_subscribers, queue_alerts, sync_subscriptions
from crawlers import Fetcher, FetchResult, canonical_url, is_private_address
from crawlers.listings import (
    ListedLink,
    ListingError,
    fetch_listing,
    parse_feed,
    parse_hanweb_listing,
    parse_html_listing,
    parse_json_listing,
)
from extraction import EXTRACTOR_REVISION
from policywatch.attachments import (
    MAX_ATTACHMENTS_PER_PAGE,
    file_name,
    file_revision,
    is_file_target,
    observe_files,
)
from policywatch.classify import diff_versions, make_event
from policywatch.config import Config, ListingConfig, Settings, SourceConfig
from policywatch.health import assess_cycle, record_health
from policywatch.identity import (
    GONE,
    MOVED,
    UNKNOWN,
    moved_candidates,
    moved_document,
    pair_verdict,
    redirected_home,
)
from policywatch.locking import SourceBusy, source_lock
from policywatch.observe import Observation, Target, make_fetcher, observe_all, use_processes
from policywatch.planning import schedule_checks, url_host
from policywatch.policy_graph import Resolver, record_references, resolve_pending
from policywatch.reextract import refresh_current_version
from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from storage import store
from storage.db import ensure_schema, session_factory, unit_of_work
from storage.models import ChangeEvent, Document, DocumentVersion, Source, utcnow
from storage.search_index import index_pending_versions

if TYPE_CHECKING:
    from extraction import ExtractedDocument

log = logging.getLogger(__name__)

# What one transaction of the version stage holds at most: pages read in full (each commit costs
# SQLite's full-text index a segment and its merges: indexing a version took 29 ms alone, 13 ms
# 25 to a transaction, 9 ms 100 to one), pages seen again (304 or unchanged), and seconds (so the
# web app sees a long cycle's progress).
DOCUMENTS_PER_TRANSACTION = 50
SEEN_BATCH = 200
MAX_TRANSACTION_S = 5.0
# New URLs a source remembers across cycles when its budget leaves them for later.
MAX_PENDING_URLS = 10_000


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
    # Re-check scheduling (policywatch.schedule): known documents due this cycle, those re-checked
    # (planned), those left for a later cycle by the host budget or max_documents, and new URLs left.
    due: int = 0
    rechecked: int = 0
    deferred: int = 0
    new_deferred: int = 0
    early: int = 0  # not due yet, re-checked with what the budget left (recheck.early)
    shrunk: int = 0  # changed pages that lost more than half their text (policywatch.health)
    failures: list[dict[str, str]] = field(default_factory=list)
    # CPU seconds per stage: fetch (the fetch workers' threads), extract, version, diff (classify,
    # events and alert queueing; the processing thread); fetch_wall: summed request wall time.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # Per source: documents, due, rechecked, deferred, fresh_share (checked within their interval
    # when the cycle started), oldest_check_age_s (after it), budget and budget_used per host.
    freshness: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per source: state (up | degraded | down), consecutive_failures, reason, since (policywatch.health).
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The cycle's identity (policywatch.health updates a source once per cycle).
    cycle_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def add(self, other: CycleSummary) -> None:
        for name, value in asdict(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        self.failures.extend(other.failures)
        for source_id, values in other.freshness.items():
            self.freshness.setdefault(source_id, {}).update(values)
        self.health.update(other.health)
        for stage, seconds in other.stage_seconds.items():
            self.time(stage, seconds)

    def time(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def fail(self, source_id: str, url: str, error: str) -> None:
        self.errors += 1
        self.failures.append({"source": source_id, "url": _without_credentials(url), "error": error})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage_seconds"] = {k: round(v, 4) for k, v in self.stage_seconds.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CycleSummary:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _without_credentials(url: str) -> str:
    """A configured URL's user:password@ stays out of summaries, logs and the Airflow UI."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


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
    *,
    full: bool = False,
) -> CycleSummary:
    """Run every selected source once; the database must be reachable (else DBAPIError propagates).

    `full`: re-check every known document, whether due or not, with no budget."""
    ensure_schema(engine)
    factory = session_factory(engine)
    # Subscribers live in the database (what was sent survives config edits): bring them up to date.
    sync_subscriptions(factory, config.subscribers)
    sources = [config.source(s) for s in source_ids] if source_ids else list(config.sources)
    own_fetcher = fetcher is None
    # One process: its own politeness (start slots, up to `concurrency` requests in flight); the
    # run lock keeps Airflow's batches off these sources meanwhile.
    fetcher = fetcher or make_fetcher(config.settings)
    browser: Fetcher | None = None  # one headless Chromium for the cycle's `fetcher: browser` sources
    summary = CycleSummary()
    try:
        for source in sources:
            use = fetcher
            if own_fetcher and source.fetcher == "browser":
                browser = browser or make_fetcher(config.settings, source=source)
                use = browser
            summary.add(run_source(source, config, factory, use, full=full))
    finally:
        if browser is not None:
            browser.close()
        if own_fetcher:
            fetcher.close()
    delivery = deliver_after_cycle(engine)  # never raises for SMTP trouble: alerts wait, pending
    summary.alerts_sent, summary.alerts_pending = delivery.alerts_sent, delivery.pending
    _send_operator_notices(engine)
    return summary


def _send_operator_notices(engine: Engine) -> None:
    """A source that became degraded or recovered in this cycle: tell the operators (once)."""
    from alerts.smtp import SmtpConfigError, settings_from_env
    from policywatch.health import deliver_notices

    try:
        smtp = settings_from_env()
    except SmtpConfigError:
        smtp = None
    report = deliver_notices(engine, smtp)
    if report.error:
        log.warning("operator notices: %s (%d pending)", report.error, report.pending)


@dataclass
class SourcePlan:
    """What one source's cycle will check, in order: discovery's result, JSON-able for Airflow's XCom."""

    source_id: str
    silent: bool  # the source has no baseline yet: record documents without events
    # First: the possible moves (a document's target followed by a target of the new URL with the
    # same document_id, see `move_pairs`), then the new URLs; checked and committed before `due`.
    new: list[Target]
    # Then the known documents that are due, most overdue first (policywatch.schedule).
    due: list[Target]
    summary: CycleSummary  # what discovery itself did (listing errors) and what the plan left for later

    def to_json(self) -> dict[str, object]:
        return {
            "source_id": self.source_id,
            "silent": self.silent,
            "new": [asdict(t) for t in self.new],
            "due": [asdict(t) for t in self.due],
            "summary": self.summary.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourcePlan:
        return cls(
            source_id=data["source_id"],
            silent=data["silent"],
            new=[Target(**t) for t in data.get("new", [])],
            due=[Target(**t) for t in data.get("due", [])],
            summary=CycleSummary.from_json(data["summary"]),
        )


def run_source(
    source: SourceConfig,
    config: Config,
    factory: sessionmaker[Session],
    fetcher: Fetcher,
    *,
    full: bool = False,
) -> CycleSummary:
    summary = CycleSummary(sources=1)
    with ExitStack() as held:
        try:
            # Two cycles never process one source at once (see policywatch.locking): the second skips it.
            held.enter_context(source_lock(factory.kw["bind"], source.id))
        except SourceBusy as busy:
            log.warning("source %s skipped: %s", source.id, busy)
            summary.fail(source.id, (source.configured_urls or ("",))[0], f"skipped: {busy}")
            return summary
        plan = plan_source(source, config, factory, fetcher, full=full)
        summary.add(plan.summary)
        # New documents first: their events (and alerts) are committed before any re-check starts,
        # so how soon a new policy is seen does not depend on how many documents are known.
        settings = config.settings
        summary.add(process_targets(source, factory, fetcher, plan.new, plan.silent, settings=settings))
        summary.add(process_targets(source, factory, fetcher, plan.due, plan.silent, settings=settings))
        summary.add(
            finish_source(
                factory,
                source.id,
                succeeded=summary.succeeded > 0,
                plan=plan.summary,
                cycle=summary,
                degraded_after=config.settings.degraded_after,
            )
        )
    log.info(
        "source %s: %d seen, %d fetched, %d not modified, %d unchanged, %d new, %d changed, %d removed, "
        "%d errors; %d due, %d re-checked, %d deferred",
        source.id,
        summary.documents_seen,
        summary.fetched,
        summary.not_modified,
        summary.unchanged,
        summary.new,
        summary.changed,
        summary.removed,
        summary.errors,
        summary.due,
        summary.rechecked,
        summary.deferred,
    )
    return summary


def plan_source(
    source: SourceConfig,
    config: Config,
    factory: sessionmaker[Session],
    fetcher: Fetcher,
    *,
    full: bool = False,
    now: datetime | None = None,
) -> SourcePlan:
    """Discover: read the listings and decide which documents this cycle checks, in which order."""
    summary = CycleSummary()
    now = now or utcnow()
    with unit_of_work(factory) as session:
        src = store.ensure_source(session, source.id, source.name)
        silent = src.baseline_at is None and not config.settings.first_run_alerts
        known = store.known_documents(session, source.id)
        previous_links = src.last_listing_links
        pending = list(src.pending_urls or [])
        previously_listed = set(src.listed_urls or [])
        baseline_at = src.baseline_at

    listing_requests: Counter[str] = Counter()
    listed = discover_listed(
        source, fetcher, factory, summary, allows_private(source), previous_links, listing_requests
    )
    # The configured pages, the listings' links in their order, then what earlier cycles left.
    wanted = [canonical_url(u) for u in source.pages] + [link.url for link in listed] + pending
    known_targets: dict[int, tuple[Target, store.KnownDocument]] = {}
    for doc in known.values():
        fingerprint = doc.page_fingerprint if doc.status == "active" else None
        target = Target(doc.url, doc.id, doc.etag, doc.last_modified, fingerprint)
        known_targets.setdefault(doc.id, (target, doc))
    new_urls = [u for u in dict.fromkeys(wanted) if u not in known]
    pairs: list[tuple[Target, Target]] = []
    if new_urls and known and summary.errors == 0:
        # A known document the listing dropped, and a new URL showing its title: both are checked
        # first, as a pair (the document's own target, then the new URL with the document's id),
        # decided together whatever order they answer in: see policywatch.identity and
        # DocumentProcessor.
        with factory() as session:
            known_urls = {url: doc.id for url, doc in known.items()}
            moves = moved_candidates(session, source.id, listed, known_urls, new_urls)
        for doc_id, url in moves.items():
            pairs.append((known_targets.pop(doc_id)[0], Target(url, doc_id)))
            new_urls.remove(url)
    dropped: list[Target] = []
    listed_now = {link.url for link in listed}
    if new_urls and summary.errors == 0 and previously_listed:
        # Documents the listing showed last cycle and no longer does, while new URLs appeared: one
        # of them may have moved there. Each is checked before the new URLs (its redirect keeps its
        # history), at the cost of about one request per new document.
        for url in sorted(previously_listed - listed_now):
            doc = known.get(url)
            if doc is not None and doc.id in known_targets and doc.status == "active":
                dropped.append(known_targets.pop(doc.id)[0])
    checks = schedule_checks(
        source,
        config,
        pairs=pairs,
        first=dropped,
        new_urls=new_urls,
        known=known_targets,
        baseline_at=baseline_at,
        listing_requests=listing_requests,
        now=now,
        full=full,
    )
    listed_urls = sorted(listed_now)[:MAX_PENDING_URLS] if summary.errors == 0 else None
    if checks.new_deferred != pending or (listed_urls is not None and set(listed_urls) != previously_listed):
        with unit_of_work(factory) as session:
            src = session.get(Source, source.id)
            if src is not None:
                src.pending_urls = checks.new_deferred[:MAX_PENDING_URLS] or None
                if listed_urls is not None:
                    src.listed_urls = listed_urls or None
    summary.documents_seen = len(known_targets) + len(pairs) + len(dropped) + len(new_urls)
    summary.due, summary.deferred = checks.due_count, checks.deferred
    summary.rechecked = len(checks.due) - checks.early
    summary.early = checks.early
    summary.new_deferred = len(checks.new_deferred)
    summary.freshness[source.id] = {
        "documents": checks.documents,
        "due": checks.due_count,
        "rechecked": len(checks.due) - checks.early,
        "early": checks.early,
        "deferred": checks.deferred,
        "not_due": checks.not_due,
        "new_deferred": len(checks.new_deferred),
        "fresh_share": round(checks.fresh / checks.documents, 4) if checks.documents else 1.0,
        "oldest_overdue_s": round(checks.oldest_overdue_s, 1),
        "budget": checks.budgets,
        "budget_used": checks.used,
        "full": full,
    }
    return SourcePlan(source.id, silent, checks.new, checks.due, summary)


def process_targets(
    source: SourceConfig,
    factory: sessionmaker[Session],
    fetcher: Fetcher,
    targets: Sequence[Target],
    silent: bool,
    classifier: RelevanceClassifier | None = None,
    *,
    settings: Settings | None = None,
    processes: int | None = None,
) -> CycleSummary:
    """Observe (fetch, read) a batch of documents of one source, then version, diff and classify them.

    `processes`: worker processes for the observe stage (None: as `settings.processes` allows for
    this source, see policywatch.observe; Airflow tasks pass 1, their parallelism is mapped tasks).
    """
    summary = CycleSummary()
    if classifier is None:
        classifier = settings.relevance if settings is not None else DEFAULT_CLASSIFIER
    if processes is None:
        processes = use_processes(settings, source, len(targets)) if settings is not None else 1
    processor = DocumentProcessor(
        source, factory, summary, silent, classifier=classifier, pairs=move_pairs(targets)
    )
    # Known documents before new URLs: a document whose URL now redirects to one of the new URLs
    # moves there (keeping its history) before that URL could be taken for a new document.
    known = [t for t in targets if t.document_id is not None]
    fresh = [t for t in targets if t.document_id is None]
    allow_private = allows_private(source)

    def observe(group: Sequence[Target]) -> None:
        pages = [t for t in group if not is_file_target(t)]
        files = [t for t in group if is_file_target(t)]
        for observation in chain(
            observe_all(fetcher, source, pages, allow_private, settings=settings, processes=processes),
            observe_files(fetcher, source, files, allow_private),
        ):
            if observation is None:  # the observe stage keeps us waiting: hold no lock meanwhile
                processor.commit_documents()
                continue
            for stage, seconds in observation.cpu_s.items():
                summary.time(stage, seconds)
            summary.time("fetch_wall", observation.fetch.elapsed_s)
            processor.process(observation)

    try:
        observe(known)
        processor.finish()
        if fresh:
            if known:
                processor.flush()
                fresh = unknown_targets(factory, source.id, fresh)
            observe(fresh)
            processor.finish()
        # The files the pages just read link and nobody watches yet: read now, in the same cycle.
        found = processor.take_found_attachments()
        if found:
            processor.flush()
            attachments = unknown_targets(factory, source.id, [Target(url) for url in found])
            processor.attachment_parents.update(found)
            observe(attachments)
        processor.flush()
        # The batch's versions into the search index at once: one FTS5 segment, not one per commit.
        index_pending_versions(factory.kw["bind"])
        with unit_of_work(factory) as session:
            resolve_pending(session)  # references to documents this cycle (or another) just found
    finally:
        processor.close()  # after an error: the open batch is rolled back
    return summary


def unknown_targets(
    factory: sessionmaker[Session], source_id: str, targets: Sequence[Target]
) -> list[Target]:
    """The new URLs that are still not any document's (a moved document may have claimed some)."""
    with factory() as session:
        known_now = store.known_documents(session, source_id)
    return [t for t in targets if t.url not in known_now]


def move_pairs(targets: Sequence[Target]) -> dict[int, tuple[Target, Target]]:
    """The possible moves among `targets`: document id -> (its target, the new URL's target).

    The plan puts a document's own target first and the new URL that may be its new address second,
    with the same document_id (see SourcePlan.known).
    """
    first: dict[int, Target] = {}
    pairs: dict[int, tuple[Target, Target]] = {}
    for target in targets:
        doc_id = target.document_id
        if doc_id is None:
            continue
        if doc_id not in first:
            first[doc_id] = target
        elif doc_id not in pairs and target.url != first[doc_id].url:
            pairs[doc_id] = (first[doc_id], target)
    return pairs


def finish_source(
    factory: sessionmaker[Session],
    source_id: str,
    *,
    succeeded: bool,
    plan: CycleSummary | None = None,
    cycle: CycleSummary | None = None,
    degraded_after: int = 2,
) -> CycleSummary:
    """Close a source's cycle: the first cycle that reached any document, and left no new URL for
    later, ends its baseline; `cycle` (the source's whole cycle) updates its health.

    Returns the source's freshness after the cycle (the plan's, with the oldest check age now) and
    its health.
    """
    result = CycleSummary()
    with unit_of_work(factory) as session:
        src = session.get(Source, source_id)
        if src is None:
            return result
        now = utcnow()
        src.last_run_at = now
        if succeeded:
            src.last_success_at = now
            # A baseline the budget split over several cycles ends with the cycle that recorded its
            # last document: the archive's remainder is not "new".
            if src.baseline_at is None and not (plan is not None and plan.new_deferred):
                src.baseline_at = now
        oldest = session.scalar(
            select(func.min(Document.last_checked_at)).where(
                Document.source_id == source_id, Document.status == "active"
            )
        )
        freshness = dict((plan.freshness if plan is not None else {}).get(source_id, {}))
        freshness["oldest_check_age_s"] = round((now - _aware(oldest)).total_seconds(), 1) if oldest else 0.0
        if plan is not None:
            src.freshness = {**freshness, "at": now.isoformat()}
        if cycle is not None:
            assessed = assess_cycle(source_id, cycle)
            result.health[source_id] = record_health(
                session, source_id, assessed, cycle.cycle_id, degraded_after
            )
    result.freshness[source_id] = freshness
    return result


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def discover_listed(
    source: SourceConfig,
    fetcher: Fetcher,
    factory: sessionmaker[Session],
    summary: CycleSummary,
    allow_private: bool,
    previous_links: int | None,
    requests: Counter[str] | None = None,
) -> list[ListedLink]:
    """Read every listing (HTML, JSON, RSS/Atom; each page of a paginated one) into listed documents.

    `requests` counts the listing pages fetched per host (they come out of the host's budget)."""
    listings = source.all_listings
    if not listings:
        return []
    links: list[ListedLink] = []
    listing_failed = False
    last_result = None
    for listing in listings:
        seen_here: set[str] = set()
        for number, page_url in enumerate(listing.page_urls(), start=1):
            started = time.perf_counter()
            result = fetch_listing(
                fetcher,
                page_url,
                kind=listing.kind,
                min_delay_s=source.min_delay_s,
                allow_private=allow_private,
                encoding=source.encoding,
            )
            summary.time("fetch", time.perf_counter() - started)
            if requests is not None:
                requests[url_host(page_url)] += max(1, result.attempts)  # retries are requests too
            last_result = result
            beyond_the_end = number > 1 and result.gone
            with unit_of_work(factory) as session:
                outcome = "listing" if result.ok or beyond_the_end else "error"
                store.record_attempt(session, source.id, None, result, outcome)
            if beyond_the_end:
                break  # a page after the last one answers 404: the list is shorter than the page limit
            if not result.ok:
                listing_failed = True
                reason = result.error or (f"HTTP {result.status}" if result.status else "no answer")
                summary.fail(source.id, page_url, f"listing: {reason}")
                break
            assert result.text is not None
            try:
                found = read_listing(listing, result.text, result.final_url)
            except ListingError as exc:
                listing_failed = True
                summary.fail(source.id, page_url, f"listing: {exc}")
                break
            fresh = [link for link in found if link.url not in seen_here]
            seen_here.update(link.url for link in fresh)
            links.extend(fresh)
            if not fresh:
                break  # an empty page, or a site that serves its first page for any page number
    links = list({link.url: link for link in reversed(links)}.values())[::-1]  # first occurrence wins
    if not listing_failed:
        if not links and previous_links:
            # A listing that suddenly lists nothing is broken (a redesign, an error page): a source
            # error, never a reason to think its documents are gone.
            reason = "listing: no document links found (it had some before)"
            summary.fail(source.id, listings[0].url, reason)
            if last_result is not None:
                with unit_of_work(factory) as session:
                    store.record_attempt(
                        session, source.id, None, last_result, "error", error=reason, error_kind="listing"
                    )
        else:
            with unit_of_work(factory) as session:
                src = session.get(Source, source.id)
                if src is not None:
                    src.last_listing_links = len(links)
    return links


def read_listing(listing: ListingConfig, text: str, base_url: str) -> list[ListedLink]:
    """The documents one fetched listing page shows."""
    if listing.kind == "json":
        return parse_json_listing(
            text,
            base_url,
            items=listing.items,
            url_field=listing.url_field,
            title_field=listing.title_field,
            date_field=listing.date_field,
            html_field=listing.html_field,
            pattern=listing.link_pattern,
        )
    if listing.kind == "rss":
        return parse_feed(text, base_url, listing.link_pattern)
    if listing.kind == "hanweb":
        return parse_hanweb_listing(text, base_url, listing.link_pattern)
    assert listing.link_pattern is not None  # checked when the configuration was loaded
    return parse_html_listing(text, base_url, listing.link_pattern)


class DocumentProcessor:
    """Everything after the observe stage: version, diff, classify, queue alerts.

    Documents are written in batches, one transaction each (up to DOCUMENTS_PER_TRANSACTION pages
    read in full, SEEN_BATCH pages seen again, MAX_TRANSACTION_S seconds; committed early whenever
    the observe stage keeps the version stage waiting, see observe.IDLE_AFTER_S). A batch is whole or
    absent: a crash or a lost database loses the observations of the open batch, which the next
    cycle makes again, never half a document, an event without its alerts, or an alert twice.

    Possible moves (`pairs`, see policywatch.identity): the observations of a document's URL and of
    the new URL that may be its new address are held until both have come, in either order, then
    decided together (`_take_pair`) in one unit of the batch.
    """

    def __init__(
        self,
        source: SourceConfig,
        factory: sessionmaker[Session],
        summary: CycleSummary,
        silent: bool,
        subscribers: Sequence[ActiveSubscriber] | None = None,
        classifier: RelevanceClassifier = DEFAULT_CLASSIFIER,
        pairs: Mapping[int, tuple[Target, Target]] | None = None,
    ):
        self.source = source
        self.classifier = classifier  # settings.relevance of the configuration this cycle runs
        self.factory = factory
        self.summary = summary
        self.silent = silent
        # The alert subscribers (None: read from the database at the first event of this batch).
        self.subscribers = subscribers
        self._resolver: Resolver | None = None  # known documents, for references (lazily)
        # One transaction holds many documents (see DOCUMENTS_PER_TRANSACTION): the observations
        # of the open batch, kept to redo them one by one if a page fails inside it.
        self._session: Session | None = None
        self._opened_at = 0.0
        # Each unit: the observation it is reported under, the work that writes it, its counts.
        self._batch: list[tuple[Observation, Callable[[Session], None], CycleSummary]] = []
        self._seen: list[store.SeenAgain] = []
        # Possible moves: document id -> (its target, the new URL's target), and the observation
        # of a pair that waits for its partner's.
        self._pairs = dict(pairs or {})
        self._halves: dict[int, Observation] = {}
        # Attachments: files linked from the pages read in this batch that no document is yet
        # (URL -> the page's document id), and the parents of the attachment targets being read.
        self._found_attachments: dict[str, int] = {}
        self.attachment_parents: dict[str, int] = {}
        self._page_titles: dict[int, str] = {}

    def _event(self, kind: str, document: Document, **details: Any) -> ChangeEvent:
        event = make_event(kind, document, classifier=self.classifier, **details)
        if document.attachment_of is not None:
            # An attachment's alert names the notice it belongs to and the file.
            event.attachment_of = document.attachment_of
            page = self._page_titles.get(document.attachment_of)
            if page is None:
                page_doc = self._session.get(Document, document.attachment_of) if self._session else None
                page = page_doc.title if page_doc is not None and page_doc.title else ""
                self._page_titles[document.attachment_of] = page
            name = file_name(document.url)
            event.title = f"{page}｜附件：{name}" if page else f"附件：{name}"
        return event

    def take_found_attachments(self) -> dict[str, int]:
        """The attachments found since the last call (URL -> page's document id)."""
        found, self._found_attachments = self._found_attachments, {}
        return found

    def _note_attachments(self, session: Session, page: Document, content: ExtractedDocument) -> None:
        """Files this page links that no document is yet: to be read in this cycle."""
        if not self.source.attachments or page.attachment_of is not None:
            return
        page_host = url_host(page.url)
        for url, _ in content.attachments[:MAX_ATTACHMENTS_PER_PAGE]:
            try:
                canonical = canonical_url(url)
            except ValueError:
                continue
            if url_host(canonical) != page_host:
                continue  # the page's own files: another host is another site's (and budget's)
            if (
                canonical not in self._found_attachments
                and store.document_for_url(session, canonical) is None
            ):
                self._found_attachments[canonical] = page.id

    def _known_documents(self, session: Session, document: Document) -> Resolver:
        """The cycle's index of known documents (policywatch.policy_graph), loaded once when a new
        text first references another document, then kept up to date with the documents recorded."""
        if self._resolver is None:
            self._resolver = Resolver.load(session)
        self._resolver.add_document(document)
        return self._resolver

    def _queue_alerts(self, session: Session, event: ChangeEvent) -> None:
        """The event's outbox rows, in the event's own transaction (exactly once, see alerts)."""
        if self.subscribers is None:
            self.subscribers = active_subscribers(session)
        if self.subscribers:
            queue_alerts(session, event, self.subscribers)

    def process(self, seen: Observation) -> None:
        """Take one observation into the open batch (committed by `flush`, or when it is full)."""
        doc_id = seen.target.document_id
        pair = self._pairs.get(doc_id) if doc_id is not None else None
        if doc_id is not None and pair is not None and seen.target in pair:
            partner = self._halves.pop(doc_id, None)
            if partner is None:
                self._halves[doc_id] = seen  # decided when the other half comes
            else:
                old, new = (seen, partner) if seen.target == pair[0] else (partner, seen)
                self._take_pair(old, new)
        else:
            self._take(seen)
        if (
            len(self._batch) >= DOCUMENTS_PER_TRANSACTION
            or len(self._seen) >= SEEN_BATCH
            or (self._session is not None and time.monotonic() - self._opened_at > MAX_TRANSACTION_S)
        ):
            self.flush()

    def finish(self) -> None:
        """Decide the halves of pairs whose partner never came (the batch held only one of them)."""
        halves, self._halves = self._halves, {}
        for doc_id, seen in halves.items():
            if seen.target == self._pairs[doc_id][0]:
                self._take(seen)
            else:
                self._write(seen, lambda session, o=seen: self._candidate_alone(session, o))

    def _take(self, seen: Observation) -> None:
        if seen.same_page or (seen.fetch.not_modified and not seen.fetch.error):
            self._seen_again(seen)
        else:
            self._write(seen, lambda session: self._process(session, seen))

    def _write(self, seen: Observation, work: Callable[[Session], None]) -> None:
        """Run `work` in the open batch; `seen` names it if it fails."""
        session = self._open()
        try:
            delta = self._counted(lambda: work(session))
        except (OperationalError, DBAPIError):
            raise  # the database is gone: the cycle stops, the next one catches up
        except Exception:  # a bug on one page must not stop the other pages
            self._batch.append((seen, work, CycleSummary()))
            self._replay_batch()
        else:
            self._batch.append((seen, work, delta))

    def _counted(self, work: Callable[[], None]) -> CycleSummary:
        """Run `work` counting into a summary of its own: it joins the cycle's when committed."""
        cycle_summary, self.summary = self.summary, CycleSummary()
        try:
            work()
            return self.summary
        finally:
            self.summary = cycle_summary

    def _open(self) -> Session:
        if self._session is None:
            self._session = self.factory()
            self._session.begin()
            self._opened_at = time.monotonic()
        return self._session

    def _replay_batch(self) -> None:
        """A page failed inside the batch: roll the batch back and redo its pages one transaction
        each, so that only the failing page is lost (recorded as an internal error)."""
        self.close()
        self._resolver = None  # it knew documents of the rolled-back batch: read it again
        batch, self._batch = self._batch, []
        for seen, work, _ in batch:
            try:
                with unit_of_work(self.factory) as session:
                    self.summary.add(self._counted(lambda s=session, w=work: w(s)))
            except (OperationalError, DBAPIError):
                raise
            except Exception as exc:
                log.exception("processing %s failed", seen.target.url)
                with unit_of_work(self.factory) as session:
                    self._fail(
                        session,
                        seen.target,
                        seen.fetch,
                        f"processing failed: {type(exc).__name__}: {exc}",
                        "internal",
                    )

    def _seen_again(self, seen: Observation) -> None:
        """A 304, or the same page but for chrome: the current version seen again (written in batches)."""
        self.summary.succeeded += 1
        if seen.same_page:
            self.summary.fetched += 1
            self.summary.unchanged += 1
            outcome = "unchanged"
        else:
            self.summary.not_modified += 1
            outcome = "not_modified"
        if seen.target.document_id is None:  # a conditional request is only ever made for a known one
            return
        self._seen.append(store.SeenAgain(self.source.id, seen.target.document_id, seen.fetch, outcome))

    def flush(self) -> None:
        """Commit the open batch: its documents and the pages seen again that are waiting."""
        if self._seen:
            started = time.thread_time()
            store.record_seen_again(self._open(), self._seen)
            self.summary.time("version", time.thread_time() - started)
        if self._session is not None:
            self._session.commit()
        self.close()
        for _, _, delta in self._batch:
            self.summary.add(delta)
        self._seen, self._batch = [], []

    def commit_documents(self) -> None:
        """Commit the open batch if it has written anything (a transaction that wrote holds
        SQLite's write lock: other cycles and Airflow tasks wait on it)."""
        if self._session is not None:
            self.flush()

    def close(self) -> None:
        """End the open batch without committing it (after a database error: nothing half-written)."""
        if self._session is not None:
            self._session.close()  # rolls back what was not committed
            self._session = None

    def _fail(
        self, session: Session, target: Target, result: FetchResult, reason: str, kind: str | None = None
    ) -> None:
        """A fetch error: recorded with its reason, counted, and nothing else (no version, no event)."""
        store.record_attempt(
            session, self.source.id, target.document_id, result, "error", error=reason, error_kind=kind
        )
        self.summary.fail(self.source.id, target.url, reason)

    def _process(self, session: Session, seen: Observation) -> None:
        source_id, summary = self.source.id, self.summary
        target, result = seen.target, seen.fetch
        if target.document_id is not None and not self._own_url(session, target):
            # A new URL that may be this document's new address, without the document's own
            # target in this batch: never recorded as the document on a guess.
            self._candidate_alone(session, seen)
            return
        if result.error:
            self._fail(session, target, result, result.error)
            return
        if result.ok:
            summary.fetched += 1
        if redirected_home(target.url, result.final_url, result.redirects):
            # A deep page sent to the site's home page was withdrawn: a removal, never a move to
            # the home page (CONTRACT.md).
            self._gone(session, target, result, "listed link redirects to the home page")
            return
        if seen.internal_error is not None:
            self._fail(session, target, result, seen.internal_error, "internal")
            return
        if seen.not_found:
            self._gone(session, target, result)
            return
        if not result.ok:
            self._fail(session, target, result, f"HTTP {result.status}", "http")
            return
        if seen.extraction_error is not None or seen.content is None:
            self._fail(session, target, result, f"extraction: {seen.extraction_error}", "extract")
            return
        content = seen.content
        started = time.thread_time()
        if self._newly_undecodable(session, target, content):
            # Bytes that are not valid in the page's charset (a corrupted transfer or a broken CMS
            # template) would turn into U+FFFD and show as a change of a text that was clean.
            reason = f"invalid bytes for {result.encoding}: undecodable characters in the text"
            self._fail(session, target, result, reason, "encoding")
            return
        if target.document_id is not None:
            # A current version read by an older extractor is re-read first (from its stored page),
            # so that only what changed on the page can show as a change.
            refresh_current_version(session, target.document_id, self.source.content_selector)
        is_file = is_file_target(target)
        outcome = store.record_content(
            session,
            source_id,
            target.document_id,
            result,
            content,
            seen.packed or result.text or "",
            result.encoding,
            same_document=None if is_file else moved_document,
            page_fingerprint=seen.fingerprint,
            extractor_revision=file_revision() if is_file else EXTRACTOR_REVISION,
            attachment_of=self.attachment_parents.get(target.url) if target.document_id is None else None,
        )
        if outcome.kind in ("first", "changed"):
            # Before the event's alerts are queued: a subscriber may follow what this text cites.
            record_references(
                session,
                outcome.new_version,
                outcome.document,
                lambda: self._known_documents(session, outcome.document),
                outcome.old_version,
                precomputed=seen.references,
            )
        versioned = time.thread_time()
        summary.time("version", versioned - started)
        self.summary.succeeded += 1
        if not is_file:
            self._note_attachments(session, outcome.document, content)
        kind = self._classify(session, outcome)
        store.record_attempt(session, source_id, outcome.document.id, result, kind)
        summary.time("diff", time.thread_time() - versioned)

    @staticmethod
    def _newly_undecodable(session: Session, target: Target, content: ExtractedDocument) -> bool:
        """The text has U+FFFD and the document's current version had none."""
        if target.document_id is None or not any("\ufffd" in p for p in (content.title, *content.paragraphs)):
            return False
        doc = session.get(Document, target.document_id)
        if doc is None or doc.current_version_id is None:
            return False
        current = session.get(DocumentVersion, doc.current_version_id)
        return current is not None and "\ufffd" not in current.text and "\ufffd" not in current.title

    def _classify(self, session: Session, outcome: store.ContentOutcome) -> str:
        summary, doc = self.summary, outcome.document
        events = []
        if outcome.kind == "first":
            from policywatch import reposts  # numpy: only when a cycle finds a new text

            # Index the text (MinHash bands) so later reposts of it are found, baseline included.
            keys = reposts.index_version(session, outcome.new_version)
            if self.silent:
                summary.baseline += 1
                return "baseline"
            reposts.backfill(session)  # versions indexed late: new texts of changed documents
            match = reposts.find_original(session, outcome.new_version, keys)
            original = match.document if match is not None else None
            if original is not None:
                doc.republished_of_id = original.id
                events.append(
                    self._event(
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
                events.append(self._event("new", doc, old_version=None, new_version=outcome.new_version))
                summary.new += 1
                kind = "new"
        elif outcome.kind == "changed":
            assert outcome.old_version is not None
            if outcome.new_version.chars * 2 < outcome.old_version.chars:
                summary.shrunk += 1
            diff = diff_versions(outcome.old_version, outcome.new_version)
            if outcome.was_removed:
                events.append(
                    self._event(
                        "restored",
                        doc,
                        old_version=outcome.old_version,
                        new_version=outcome.new_version,
                        diff=diff,
                    )
                )
                summary.restored += 1
            events.append(
                self._event(
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
                    self._event(
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
            self._queue_alerts(session, event)
        return kind

    def _gone(
        self, session: Session, target: Target, result: FetchResult, reason: str = "listed link is not found"
    ) -> None:
        source_id, summary = self.source.id, self.summary
        if target.document_id is None:
            if target.url in self.attachment_parents:
                # A page links a file that is not there: the page's problem, noted, not a failure of
                # the cycle (and not a document until it answers).
                store.record_attempt(session, source_id, None, result, "dead_link")
                return
            # A listed link that answers "not found": the listing is stale, not a removal.
            self._fail(session, target, result, reason, "gone")
            return
        self.summary.succeeded += 1
        doc = store.mark_removed(session, target.document_id, result)
        store.record_attempt(session, source_id, target.document_id, result, "removed")
        if doc is None:
            return
        summary.removed += 1
        if not self.silent:
            current = session.get(DocumentVersion, doc.current_version_id) if doc.current_version_id else None
            removed = self._event("removed", doc, old_version=current, new_version=None)
            self._queue_alerts(session, store.add_event(session, removed))

    # --- possible moves: a document's URL and the new URL that took its place in the listing ---------

    @staticmethod
    def _own_url(session: Session, target: Target) -> bool:
        """`target.url` is its document's (current or former) URL: the target is that document's."""
        doc = session.get(Document, target.document_id)
        if doc is None or doc.url == target.url:
            return True
        holder = store.document_for_url(session, target.url)
        return holder is not None and holder.id == doc.id

    def _take_pair(self, old: Observation, new: Observation) -> None:
        """Decide a possible move from both answers (policywatch.identity.pair_verdict)."""
        doc_id = old.target.document_id
        assert doc_id is not None
        verdict = pair_verdict(old.target.url, old.fetch, old.not_found, new.target.url, new.fetch)
        if verdict == MOVED:
            if _read_in_full(new):
                # The new URL's own answer (unconditional, read in full) is the document's page now:
                # recorded as the check of the document, it moves there (storage.store.record_content).
                def moved(session: Session) -> None:
                    self._process(session, replace(new, target=old.target))
                    self._also_fetched(session, doc_id, old)

                self._write(new, moved)
            else:
                self._take(old)  # the redirect moves the document (storage.store.record_content)
                self._write(new, lambda session: self._also_fetched(session, doc_id, new))
        elif verdict == GONE:
            self._write(old, lambda session: self._old_url_gone(session, old, new))
        elif verdict == UNKNOWN:
            self._take(old)  # its fetch error
            self._write(new, lambda session: self._candidate_alone(session, new))
        else:  # STAYS: the document is still at its URL; the new URL is any new URL
            self._take(old)
            self._write(new, lambda session: self._process(session, _as_new_url(new)))

    def _also_fetched(self, session: Session, doc_id: int, seen: Observation) -> None:
        """The other answer of a moved document's pair: logged as the document's, nothing else."""
        if seen.fetch.error:
            self._fail(session, replace(seen.target, document_id=doc_id), seen.fetch, seen.fetch.error)
            return
        if seen.fetch.ok:
            self.summary.fetched += 1
        store.record_attempt(session, self.source.id, doc_id, seen.fetch, "moved")

    def _old_url_gone(self, session: Session, old: Observation, new: Observation) -> None:
        """The document's URL is gone: the new page first, which is the document if its 发文字号 and
        title say so (then no removal); else the document is removed."""
        doc_id = old.target.document_id
        self._process(session, _as_new_url(new))
        if not (_read_in_full(new) or new.not_found):
            # The new page could not be read (its failure is reported): whether it is the document is
            # unknown, so the removal waits for the next cycle, which pairs them again.
            store.record_attempt(session, self.source.id, doc_id, old.fetch, "deferred")
            return
        holder = store.document_for_url(session, new.target.url)
        if holder is not None and holder.id == doc_id:
            if old.fetch.ok:
                self.summary.fetched += 1
            store.record_attempt(session, self.source.id, doc_id, old.fetch, "moved")
            return
        self._process(session, old)

    def _candidate_alone(self, session: Session, seen: Observation) -> None:
        """A new URL that may be a document's new address, without a usable answer from the document's
        own URL: recorded only when its 发文字号 and title prove it is that document (or it could not
        become a document anyway); otherwise it waits for the next cycle, never recorded as `new` or
        `republished` on a guess."""
        doc_id = seen.target.document_id
        as_new = _as_new_url(seen)
        if not _read_in_full(seen):
            self._process(session, as_new)  # a fetch error or a stale link: reported as such
            return
        assert seen.content is not None
        same = moved_document(session, self.source.id, seen.content)
        if same is not None and same.id == doc_id:
            self._process(session, as_new)
            return
        log.info(
            "%s: left for the next cycle (it may be document %s, whose URL gave no answer)",
            seen.target.url,
            doc_id,
        )
        store.record_attempt(session, self.source.id, None, seen.fetch, "deferred")


def _read_in_full(seen: Observation) -> bool:
    return seen.fetch.ok and seen.content is not None and not seen.not_found


def _as_new_url(seen: Observation) -> Observation:
    """The observation of a pair's new URL, as the observation of a URL no document has yet."""
    return replace(seen, target=Target(seen.target.url))
