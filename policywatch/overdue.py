"""A source's run that has not finished long after it should have: one mail to the operators.

Each source DAG carries an Airflow Deadline Alert (`deadline_alert`): when a run is still going
`settings.overdue_after_intervals` schedule intervals after it was queued (a cycle stuck on a hostile
server, workers gone, a lock never released), Airflow's triggerer calls `source_overdue`, which
records an operator notice of kind "overdue" and sends the pending notices (policywatch.health's
outbox: sent once, kept pending while SMTP is down, listed on the web app's Mail page). A run is
noticed once, however often the callback is delivered.

No Airflow import here but in `deadline_alert`, which only the DAG file calls; the database and
mail modules are imported by the callback (the DAG file's parse stays cheap).
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from policywatch.schedule import schedule_interval_s

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from policywatch.health import NoticeReport

log = logging.getLogger(__name__)

OVERDUE = "overdue"  # OperatorNotice.kind


def overdue_after(schedule: str, intervals: float) -> timedelta | None:
    """How long after a run is queued it is overdue: `intervals` times the schedule's interval
    (its shortest gap, for an irregular cron); None when there is no deadline (`intervals` 0, or a
    schedule that does not repeat)."""
    seconds = schedule_interval_s(schedule) * intervals if intervals > 0 else math.inf  # NaN: none
    if not math.isfinite(seconds):
        return None
    return timedelta(seconds=seconds)


def deadline_alert(source_id: str, schedule: str, intervals: float) -> Any:
    """The Deadline Alert of a source's DAG (None: no deadline). Airflow 3.1+ (experimental there)."""
    after = overdue_after(schedule, intervals)
    if after is None:
        return None
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=after,
        callback=AsyncCallback(
            source_overdue,
            kwargs={"source_id": source_id, "after_s": after.total_seconds(), "schedule": schedule},
        ),
        name=f"{source_id} overdue",
    )


async def source_overdue(
    source_id: str, after_s: float, schedule: str, context: dict[str, Any] | None = None
) -> str:
    """The Deadline Alert's callback (run by Airflow's triggerer, in its event loop: the database and
    SMTP work runs on a thread). `context`: what Airflow sends, {"dag_run": {...}, "deadline": {...}}.
    Returns a line of text: Airflow stores it in a VARCHAR column (a dict there crashed the triggerer)."""
    run = (context or {}).get("dag_run") or {}
    report = await asyncio.to_thread(
        record_overdue,
        source_id,
        str(run.get("dag_run_id") or run.get("run_id") or "?"),
        after_s,
        schedule,
        str(run.get("queued_at") or ""),
    )
    return f"sent {report.sent}, pending {report.pending}" + (f": {report.error}" if report.error else "")


def record_overdue(
    source_id: str,
    run_id: str,
    after_s: float,
    schedule: str,
    queued_at: str = "",
    engine: Engine | None = None,
    smtp: Any = None,
) -> NoticeReport:
    """Queue the "overdue" notice of this run (once per run) and send the pending notices.
    `smtp`: alerts.smtp settings (None: from the environment, as the cycle reads them)."""
    # Here, not at the top: the DAG file imports this module to build its deadlines.
    from sqlalchemy import select

    from policywatch.health import deliver_notices
    from storage.db import ensure_schema, make_engine, session_factory, unit_of_work
    from storage.models import OperatorNotice, Source

    engine = engine or make_engine()
    ensure_schema(engine)
    factory = session_factory(engine)
    subject = f"[PolicyWatch] source {source_id} is overdue: run {run_id} has not finished"
    with unit_of_work(factory) as session:
        source = session.get(Source, source_id)
        known = session.scalar(
            select(OperatorNotice.id).where(
                OperatorNotice.source_id == source_id,
                OperatorNotice.kind == OVERDUE,
                OperatorNotice.subject == subject,
            )
        )
        if known is None and source is not None:
            hours = after_s / 3600
            session.add(
                OperatorNotice(
                    source_id=source_id,
                    kind=OVERDUE,
                    subject=subject,
                    body=(
                        f"Run {run_id} of source {source_id} ({source.name}), queued at {queued_at or '?'}, "
                        f"has not finished {hours:g} hours later: {after_s / schedule_interval_s(schedule):g} "
                        f"times its schedule ({schedule}). Nothing new from this source is recorded until it "
                        "ends: look at the run in Airflow (a task waiting on a server, on a lock, or for a "
                        "worker)."
                    ),
                )
            )
        elif source is None:
            log.warning("overdue run %s of unknown source %s: no notice", run_id, source_id)
    if smtp is None:
        from alerts.smtp import SmtpConfigError, settings_from_env

        try:
            smtp = settings_from_env()
        except SmtpConfigError:
            smtp = None
    report = deliver_notices(engine, smtp)
    if report.error:
        log.warning("operator notices: %s (%d pending)", report.error, report.pending)
    return report
