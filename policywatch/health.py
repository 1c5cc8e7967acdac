"""Sources that quietly stop: is a source still being watched, and telling the operators when not.

A cycle in which the source's listing fails or yields no links, every page fails, challenge pages
persist, or most texts suddenly shrink (a template change the extractor no longer reads) is a
failing cycle. `settings.degraded_after` failing cycles in a row make the source *degraded* (*down*
when the last one reached nothing at all); the first good cycle makes it *up* again. Each change
of state writes one operator notice in the same transaction (exactly once, whatever retries and
reruns do), sent by `deliver_notices` to POLICYWATCH_OPERATOR_EMAILS. Per cycle, not per task: the
update is idempotent for a cycle id (an Airflow retry of the closing task changes nothing).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crawlers.challenge import challenge_tag
from storage.db import session_factory, unit_of_work
from storage.models import OperatorNotice, Source, utcnow

if TYPE_CHECKING:
    from policywatch.pipeline import CycleSummary

log = logging.getLogger(__name__)

UP, DEGRADED, DOWN = "up", "degraded", "down"


class SourceDegraded(RuntimeError):
    """Raised by the Airflow task that reports a degraded source: the run goes red and retries,
    while the operators' mail comes from the notices (one per change of state, not one per task)."""


# A template change: at least this many pages read in full, and this share of them, lost more than
# half of their text at once.
SHRINK_MIN_PAGES = 3
SHRINK_SHARE = 0.5


@dataclass(frozen=True)
class CycleHealth:
    """What one cycle says of its source: failing or not, why, the URL that shows it, and whether it
    reached anything at all (a listing or a page answered)."""

    failing: bool
    reason: str | None = None
    url: str | None = None
    reached_anything: bool = True


def assess_cycle(source_id: str, summary: CycleSummary) -> CycleHealth:
    """Decide from one source's cycle summary whether the source is working."""
    failures = [f for f in summary.failures if f.get("source") == source_id]
    listing = [f for f in failures if f["error"].startswith("listing:")]
    skipped = [f for f in failures if f["error"].startswith("skipped:")]
    pages_failed = len(failures) - len(listing) - len(skipped)
    pages = summary.succeeded + pages_failed
    challenges = [f for f in failures if challenge_tag(f["error"]) is not None]
    if skipped and not pages and not listing:
        return CycleHealth(False)  # another cycle had the source: nothing learnt
    if listing:
        return CycleHealth(
            True, listing[0]["error"], listing[0]["url"], reached_anything=summary.succeeded > 0
        )
    if pages and summary.succeeded == 0:
        first = failures[0] if failures else {"error": "every page failed", "url": ""}
        return CycleHealth(True, f"every page failed: {first['error']}", first["url"], reached_anything=False)
    if pages and len(challenges) * 2 >= pages:
        first = challenges[0]
        return CycleHealth(
            True, f"challenge pages on {len(challenges)} of {pages} pages: {first['error']}", first["url"]
        )
    read = summary.changed + summary.unchanged + summary.not_modified
    if summary.shrunk >= SHRINK_MIN_PAGES and summary.shrunk >= SHRINK_SHARE * max(read, 1):
        return CycleHealth(
            True,
            f"the text of {summary.shrunk} of {read} pages shrank by more than half (a template change?)",
        )
    return CycleHealth(False)


def record_health(
    session: Session, source_id: str, health: CycleHealth, cycle_id: str, degraded_after: int
) -> dict[str, Any]:
    """Update the source's state from one cycle (once per `cycle_id`); queue a notice on a change."""
    src = session.get(Source, source_id)
    if src is None:
        return {}
    if src.health_cycle != cycle_id:
        src.health_cycle = cycle_id
        before = src.health_state or UP
        if health.failing:
            src.consecutive_failures = (src.consecutive_failures or 0) + 1
            src.health_reason = health.reason if health.url is None else f"{health.reason} ({health.url})"
            if src.consecutive_failures >= degraded_after:
                src.health_state = DEGRADED if health.reached_anything else DOWN
        else:
            src.consecutive_failures = 0
            src.health_state = UP
        if src.health_state != before:
            src.health_since = utcnow()
        if before == UP and src.health_state != UP:
            _queue_notice(session, src, "degraded")
        elif before != UP and src.health_state == UP:
            _queue_notice(session, src, "recovered")
            src.health_reason = None
    return health_report(src)


def health_report(src: Source) -> dict[str, Any]:
    return {
        "state": src.health_state or UP,
        "consecutive_failures": src.consecutive_failures or 0,
        "reason": src.health_reason,
        "since": src.health_since.isoformat() if src.health_since else None,
    }


def _queue_notice(session: Session, src: Source, kind: str) -> None:
    if kind == "degraded":
        subject = f"[PolicyWatch] source {src.id} is {src.health_state}: {src.name}"
        body = (
            f"Source {src.id} ({src.name}) has failed {src.consecutive_failures} cycles in a row and is "
            f"now {src.health_state}: nothing new from it is being seen.\n\nReason: {src.health_reason}\n\n"
            "You will get one more mail when it works again."
        )
    else:
        subject = f"[PolicyWatch] source {src.id} recovered: {src.name}"
        body = f"Source {src.id} ({src.name}) works again: its last cycle succeeded."
    session.add(OperatorNotice(source_id=src.id, kind=kind, subject=subject, body=body))


@dataclass
class NoticeReport:
    sent: int = 0
    pending: int = 0
    error: str | None = None


def deliver_notices(engine: Engine, smtp: Any, recipients: list[str] | None = None) -> NoticeReport:
    """Send the pending operator notices, each once (marked sent in its own transaction after the
    server accepted it). Without an SMTP server or recipients they stay pending (and are logged)."""
    factory = session_factory(engine)
    report = NoticeReport()
    with factory() as session:
        pending = session.scalars(
            select(OperatorNotice).where(OperatorNotice.status == "pending").order_by(OperatorNotice.id)
        ).all()
        for notice in pending:
            log.warning("operator notice: %s", notice.subject)
        ids = [n.id for n in pending]
    report.pending = len(ids)
    if not ids or smtp is None:
        return report
    # Imported only when there is something to send (the mail modules and Jinja2: 130 ms, at the end
    # of every cycle otherwise).
    from alerts.notices import operator_emails

    recipients = operator_emails() if recipients is None else recipients
    if not recipients:
        return report
    from alerts.render import sent_record
    from alerts.smtp import SmtpMailer, SmtpRejected, SmtpUnavailable

    try:
        with SmtpMailer(smtp) as mailer:
            for notice_id in ids:
                with unit_of_work(factory) as session:
                    row = session.get(OperatorNotice, notice_id)
                    if row is None or row.status != "pending":
                        continue
                    notice = row
                    notice.attempts += 1
                    notice.message_id = (
                        notice.message_id
                        or f"<policywatch.notice-{notice.id}.{uuid.uuid4().hex}@{smtp.mail_domain}>"
                    )
                    message = EmailMessage()
                    message["Subject"] = notice.subject
                    message["From"] = smtp.mail_from
                    message["To"] = ", ".join(recipients)
                    message["Date"] = formatdate(localtime=False)
                    message["Message-ID"] = notice.message_id
                    message["X-Policywatch-Event"] = f"source-{notice.kind}"
                    message["X-Policywatch-Source"] = notice.source_id
                    message.set_content(notice.body)
                    try:
                        mailer.send(message, recipients)
                    except SmtpRejected as exc:
                        notice.last_error = str(exc)
                        report.error = str(exc)
                        continue
                    notice.status, notice.sent_at = "sent", utcnow()
                    # On the web app's Mail page with the alerts and digests (alerts.render.sent_record).
                    for recipient in recipients:
                        session.add(sent_record(message, "notice", recipient, notice.sent_at))
                    report.sent += 1
                    report.pending -= 1
    except SmtpUnavailable as exc:
        report.error = str(exc)
    return report
