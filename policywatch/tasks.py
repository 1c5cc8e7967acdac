"""The pipeline's stages as plain functions with JSON-able arguments and results.

The Airflow DAGs call these (one call per task, pages batched inside), and so can anyone else: no
Airflow import here. Each returns the counts an operator wants to see for the task.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from policywatch.config import Config, load_config
from policywatch.locking import source_lock
from policywatch.observe import shared_pacer
from policywatch.pipeline import (
    CycleSummary,
    Target,
    finish_source,
    make_fetcher,
    plan_source,
    process_targets,
)
from storage.db import ensure_schema, make_engine, session_factory

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
# How long a task waits for a source another cycle (a `policywatch run`) is processing.
LOCK_WAIT_S = 600.0
COUNT_KEYS = (
    "fetched",
    "not_modified",
    "unchanged",
    "new",
    "changed",
    "removed",
    "restored",
    "republished",
    "baseline",
    "errors",
)
SCHEDULE_KEYS = ("due", "rechecked", "deferred", "new_deferred", "early")


def _setup(config_path: str | None) -> tuple[Config, Any]:
    config = load_config(config_path, lenient=True)  # a broken source entry must not stop the others
    engine = make_engine()
    ensure_schema(engine)
    return config, engine


def _url(engine: Any) -> str:
    return engine.url.render_as_string(hide_password=False)


def batches(items: Sequence[Any], size: int = DEFAULT_BATCH_SIZE) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def counts(summary: CycleSummary) -> dict[str, int]:
    return {key: getattr(summary, key) for key in COUNT_KEYS}


def discover_source(
    source_id: str,
    config_path: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    full: bool = False,
) -> dict[str, Any]:
    """Read the source's listings and plan the cycle: the new documents' batches, then the due ones'.

    Each batch is self-contained (`{"source_id", "silent", "targets"}`): a mapped task gets only its
    own batch through XCom. `full`: every known document, due or not, with no budget.
    """
    from alerts import sync_subscriptions

    config, engine = _setup(config_path)
    started_at = datetime.now(UTC)
    source = config.source(source_id)
    # The batches queue alerts for the subscribers in the database: bring them up to date first.
    sync_subscriptions(session_factory(engine), config.subscribers)
    fetcher = make_fetcher(config.settings, source=source, pacer=shared_pacer(_url(engine)))
    try:
        with source_lock(engine, source_id, wait_s=LOCK_WAIT_S):
            plan = plan_source(source, config, session_factory(engine), fetcher, full=full)
    finally:
        fetcher.close()
        engine.dispose()

    def batch_dicts(targets: Sequence[Target]) -> list[dict[str, Any]]:
        # An even size: a possible move's two targets (at an even position) are never split.
        size = max(2, batch_size + batch_size % 2)
        return [
            {"source_id": source_id, "silent": plan.silent, "targets": batch}
            for batch in batches([asdict(t) for t in targets], size)
        ]

    for failure in plan.summary.failures:
        log.warning("source %s: %s: %s", source_id, failure["url"], failure["error"])
    new_batches, due_batches = batch_dicts(plan.new), batch_dicts(plan.due)
    data = {
        "source_id": source_id,
        "silent": plan.silent,
        # What the run committed is counted from the store since this moment (see `finish`).
        "started_at": started_at.isoformat(),
        "new_batches": new_batches,
        "due_batches": due_batches,
        "summary": plan.summary.to_json(),
    }
    log.info(
        "source %s: %d new URLs in %d batches, then %d due documents in %d batches; %d deferred, "
        "%d new left for later; %d listing errors",
        source_id,
        len(plan.new),
        len(new_batches),
        len(plan.due),
        len(due_batches),
        plan.summary.deferred,
        plan.summary.new_deferred,
        plan.summary.errors,
    )
    return data


def process_batch(
    batch: dict[str, Any],
    config_path: str | None = None,
    lock_wait_s: float | None = None,
) -> dict[str, Any]:
    """Fetch → extract → version → diff → classify one batch of one source's documents.

    Holds the source's run lock shared with the run's other batches (policywatch.locking): a CLI
    cycle on the same source makes the batch wait, and past `lock_wait_s` fail with SourceBusy, for
    Airflow to retry it later. Requests take the host's turns with every other worker
    (crawlers.pacing), so batches of one host may run at once and the host still sees one request
    per `min_delay_s`.
    """
    source_id, targets = batch["source_id"], batch["targets"]
    config, engine = _setup(config_path)
    source = config.source(source_id)
    fetcher = make_fetcher(config.settings, source=source, pacer=shared_pacer(_url(engine)))
    wait_s = LOCK_WAIT_S if lock_wait_s is None else lock_wait_s
    try:
        with source_lock(engine, source_id, wait_s=wait_s, shared=True):
            summary = process_targets(
                source,
                session_factory(engine),
                fetcher,
                [Target(**t) for t in targets],
                batch["silent"],
                settings=config.settings,
                processes=1,  # Airflow runs batches in parallel as mapped tasks
            )
    finally:
        fetcher.close()
        engine.dispose()
    result = {
        **counts(summary),
        "documents": len(targets),
        "succeeded": summary.succeeded,
        "shrunk": summary.shrunk,
        "failures": summary.failures[:50],
    }
    log.info("source %s batch of %d: %s", source_id, len(targets), counts(summary))
    for failure in summary.failures[:50]:
        log.warning("fetch error %s: %s", failure["url"], failure["error"])
    return result


def finish(
    plan: dict[str, Any], results: Sequence[dict[str, Any]], config_path: str | None = None
) -> dict[str, Any]:
    """Close the source's cycle (baseline, last success), add up what its batches did, and report
    the source's freshness (in the task log, for the operator, and in the result)."""
    from policywatch.planning import freshness_line

    discovery = CycleSummary.from_json(plan["summary"])
    total = {key: getattr(discovery, key) for key in COUNT_KEYS}
    # The whole cycle as one summary (the batches' counts and failures), for the source's health.
    cycle = CycleSummary.from_json(plan["summary"])
    for result in results:
        for key in COUNT_KEYS:
            total[key] += int(result.get(key, 0))
        cycle.add(CycleSummary.from_json(result))
    config = load_config(config_path, lenient=True)  # a broken source entry must not stop the others
    engine = make_engine()
    try:
        if plan.get("started_at"):
            # A batch's retry reports nothing for what its killed try committed: the events the
            # store holds for this run are what the run did, whichever try recorded them.
            total.update(committed_events(session_factory(engine), plan["source_id"], plan["started_at"]))
        with source_lock(engine, plan["source_id"], wait_s=LOCK_WAIT_S):  # no cycle plans meanwhile
            closing = finish_source(
                session_factory(engine),
                plan["source_id"],
                succeeded=cycle.succeeded > 0,
                plan=discovery,
                cycle=cycle,
                degraded_after=config.settings.degraded_after,
            )
    finally:
        engine.dispose()
    total["health"] = closing.health.get(plan["source_id"], {})
    total["source_id"] = plan["source_id"]
    total["documents_seen"] = discovery.documents_seen
    for key in SCHEDULE_KEYS:
        total[key] = getattr(discovery, key)
    total["freshness"] = closing.freshness
    log.info("source %s cycle: %s", plan["source_id"], {k: v for k, v in total.items() if k != "freshness"})
    for source_id, fresh in closing.freshness.items():
        log.info("freshness%s", freshness_line(source_id, fresh))
    return total


EVENT_COUNT_KEYS = ("new", "changed", "removed", "restored", "republished")


def committed_events(factory: Any, source_id: str, since: str) -> dict[str, int]:
    """The source's change events recorded since `since` (ISO time), by kind."""
    from sqlalchemy import func, select

    from storage.models import ChangeEvent

    with factory() as session:
        rows = session.execute(
            select(ChangeEvent.kind, func.count())
            .where(
                ChangeEvent.source_id == source_id, ChangeEvent.detected_at >= datetime.fromisoformat(since)
            )
            .group_by(ChangeEvent.kind)
        ).all()
    found = dict(rows)
    return {kind: int(found.get(kind, 0)) for kind in EVENT_COUNT_KEYS}


def check_health(changes: dict[str, Any], config_path: str | None = None) -> dict[str, Any]:
    """Fail (a red run, retries) while the source is degraded or down, naming why; send the pending
    operator notices (one when the source became degraded, one when it recovered) first."""
    from policywatch.health import SourceDegraded, deliver_notices

    engine = make_engine()
    try:
        report = deliver_notices(engine, smtp_settings())
    finally:
        engine.dispose()
    if report.error:
        log.warning("operator notices: %s (%d pending)", report.error, report.pending)
    health = changes.get("health") or {}
    if health.get("state", "up") != "up":
        source_id = changes.get("source_id", "?")
        message = (
            f"source {source_id} is {health['state']} after {health['consecutive_failures']} failing cycles: "
            f"{health.get('reason')}"
        )
        log.warning("%s", message)
        raise SourceDegraded(message)
    return health


def alert_counts(changes: dict[str, Any]) -> dict[str, Any]:
    """The alerts of this cycle were queued with its events (same transaction); report what waits."""
    from alerts.outbox import count_open

    engine = make_engine()
    try:
        pending = count_open(session_factory(engine))
    finally:
        engine.dispose()
    return {**changes, "alerts_pending": pending}


def smtp_settings() -> Any:
    """The SMTP settings of alerts and notices (alerts.smtp.configured_settings)."""
    from alerts.smtp import configured_settings

    return configured_settings()


def deliver(config_path: str | None = None) -> dict[str, Any]:
    """Send the pending immediate alerts (exactly once: see alerts.outbox)."""
    from alerts import deliver_pending, sync_subscriptions

    config, engine = _setup(config_path)
    try:
        sync_subscriptions(session_factory(engine), config.subscribers)
        report = deliver_pending(engine, smtp_settings())
    finally:
        engine.dispose()
    if not report.configured:
        log.warning(
            "no SMTP server configured (POLICYWATCH_SMTP_URL): %d alerts stay pending", report.pending
        )
    if report.error:
        # The alerts stay pending and go out on the next delivery; failing the task shows the outage.
        raise RuntimeError(f"alert delivery stopped: {report.error} ({report.pending} pending)")
    stale = stale_alerts(config_path)
    if stale:
        raise RuntimeError(stale)
    return report.to_json()


def pending_alarm() -> timedelta:
    """How long an immediate alert may wait before the deliver task turns red
    (POLICYWATCH_ALERT_PENDING_ALARM_HOURS, default 6)."""
    raw = os.environ.get("POLICYWATCH_ALERT_PENDING_ALARM_HOURS", "").strip()
    try:
        hours = float(raw) if raw else 6.0
    except ValueError:
        hours = 6.0
    return timedelta(hours=max(hours, 0.0))


def stale_alerts(config_path: str | None = None, now: datetime | None = None) -> str | None:
    """Why the operators must look (immediate alerts pending past the alarm), or None. Refused
    messages wait between tries (alerts.outbox.REFUSAL_BACKOFF) and SMTP outages keep them pending:
    either way the delivery itself stays green run after run, so the age of what waits is checked."""
    from alerts.outbox import oldest_open

    _, engine = _setup(config_path)
    try:
        oldest, last_error = oldest_open(session_factory(engine), "immediate")
    finally:
        engine.dispose()
    if oldest is None:
        return None
    waited = (now or datetime.now(UTC)) - oldest
    if waited <= pending_alarm():
        return None
    hours = waited.total_seconds() / 3600
    why = f": last error {last_error}" if last_error else " (no SMTP server configured?)"
    return f"alerts have been pending for {hours:.1f} h (queued {oldest.isoformat()}){why}"


def digest(config_path: str | None = None) -> dict[str, Any]:
    """Send the daily digests that are due."""
    from alerts import send_due_digests, sync_subscriptions

    config, engine = _setup(config_path)
    try:
        sync_subscriptions(session_factory(engine), config.subscribers)
        report = send_due_digests(engine, smtp_settings())
    finally:
        engine.dispose()
    if report.error:
        raise RuntimeError(f"digest delivery stopped: {report.error} ({report.pending} pending)")
    return report.to_json()
