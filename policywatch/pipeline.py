"""One cycle: discover → fetch → extract/normalise → version → diff → classify (→ alert).

Plain functions: the CLI and the Airflow DAGs call the same ones. Fetches run in a small thread
pool (network-bound); everything after the fetch runs on the calling thread, one transaction per
document, so a crash never leaves half an observation.

This module is the orchestration, where a reader starts: `run_cycle` runs every source,
`run_source` one source's stages in order (the Airflow tasks, policywatch.tasks, call the same
stages one by one): `plan_source` (discover, policywatch.discovery), `process_targets` (observe,
policywatch.observe, then the version stage, policywatch.versioning) and `finish_source`. What
they report is a `CycleSummary` (policywatch.summary). The names those modules held here before
are still imported from here (`__all__`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from itertools import chain

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.deliver import deliver_after_cycle
from alerts.subscriptions import sync_subscriptions
from crawlers import Fetcher
from policywatch.attachments import is_file_target, observe_files
from policywatch.config import Config, Settings, SourceConfig
from policywatch.discovery import (
    MAX_PENDING_URLS,
    SourcePlan,
    allows_private,
    discover_listed,
    plan_source,
    read_listing,
)
from policywatch.health import assess_cycle, record_health
from policywatch.locking import SourceBusy, source_lock
from policywatch.observe import Target, make_fetcher, observe_all, use_processes
from policywatch.policy_graph import resolve_pending
from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from policywatch.summary import CycleSummary
from policywatch.versioning import DOCUMENTS_PER_TRANSACTION, MAX_TRANSACTION_S, SEEN_BATCH, DocumentProcessor
from storage import store
from storage.db import ensure_schema, session_factory, unit_of_work
from storage.models import Document, Source, utcnow
from storage.search_index import index_pending_versions

__all__ = [
    # Imported from here by the CLI, the Airflow tasks, the tests and benchmarks/pw_cycle.py (which
    # patches DocumentProcessor._queue_alerts and deliver_after_cycle on this module).
    "DOCUMENTS_PER_TRANSACTION",
    "MAX_PENDING_URLS",
    "MAX_TRANSACTION_S",
    "SEEN_BATCH",
    "CycleSummary",
    "DocumentProcessor",
    "SourcePlan",
    "Target",
    "allows_private",
    "deliver_after_cycle",
    "discover_listed",
    "finish_source",
    "make_fetcher",
    "move_pairs",
    "plan_source",
    "process_targets",
    "read_listing",
    "run_cycle",
    "run_source",
    "unknown_targets",
]

log = logging.getLogger(__name__)


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
