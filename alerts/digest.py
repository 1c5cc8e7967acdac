"""Daily digests: `send_due_digests(engine, smtp_settings)`.

A subscriber's digest is due when it has open digest rows and its last digest is a day old (or
there was none). The digest groups its events by source and collapses the reposts of one policy
(same root document or same 发文字号) into one entry. The rows of one digest are claimed together
and share one Message-ID, fixed before sending: a resend after a crash is the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts import outbox
from alerts.deliver import DeliveryReport
from alerts.render import EventView, build_event_view, digest_message
from alerts.smtp import SmtpMailer, SmtpRejected, SmtpSettings, SmtpUnavailable
from storage.db import session_factory, unit_of_work
from storage.models import ChangeEvent, OutboxMessage, Subscriber, utcnow

log = logging.getLogger(__name__)

DIGEST_INTERVAL = timedelta(hours=24)
# A daily scheduler fires a little earlier or later each day; without slack a digest sent at
# 08:00:05 would not be due at 08:00:02 the next day and would slip a whole day.
DIGEST_SLACK = timedelta(hours=1)


@dataclass
class DigestEntry:
    """One policy: its events, and the other places (reposts) it appeared at."""

    primary: EventView
    events: list[EventView]
    also_at: list[EventView] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.primary.title


@dataclass
class SourceGroup:
    source_id: str
    source_name: str
    entries: list[DigestEntry]


def group_entries(views: Sequence[EventView]) -> list[SourceGroup]:
    """Collapse reposts into entries (shown under the source of the first non-repost event),
    then group the entries by source (sources by name, entries by time)."""
    by_policy: dict[str, list[EventView]] = {}
    for view in sorted(views, key=lambda v: (v.detected_at, v.event_id)):
        by_policy.setdefault(view.policy_key, []).append(view)
    groups: dict[str, SourceGroup] = {}
    for items in by_policy.values():
        primary = next((v for v in items if v.kind != "republished"), items[0])
        events = [
            v for v in items if v.document_id == primary.document_id or v.kind not in ("new", "republished")
        ]
        also_at: list[EventView] = []
        seen_documents = {primary.document_id}
        for view in items:
            if view not in events and view.document_id not in seen_documents:
                seen_documents.add(view.document_id)
                also_at.append(view)
        group = groups.setdefault(primary.source_id, SourceGroup(primary.source_id, primary.source_name, []))
        group.entries.append(DigestEntry(primary, events, also_at))
    return sorted(groups.values(), key=lambda g: (g.source_name, g.source_id))


def due_subscribers(factory: sessionmaker[Session], now: datetime, force: bool = False) -> list[int]:
    """Active subscribers with open digest rows whose digest is due (all of them with `force`)."""
    with factory() as session:
        rows = session.execute(
            select(Subscriber.id, Subscriber.last_digest_at)
            .join(OutboxMessage, OutboxMessage.subscriber_id == Subscriber.id)
            .where(
                Subscriber.active.is_(True),
                OutboxMessage.mode == "digest",
                OutboxMessage.status.in_(outbox.OPEN_STATUSES),
            )
            .group_by(Subscriber.id, Subscriber.last_digest_at)
            .having(func.count(OutboxMessage.id) > 0)
            .order_by(Subscriber.id)
        ).all()
    return [
        row.id
        for row in rows
        if force or row.last_digest_at is None or now - row.last_digest_at >= DIGEST_INTERVAL - DIGEST_SLACK
    ]


def send_due_digests(
    engine: Engine, smtp_settings: SmtpSettings | None, *, now: datetime | None = None, force: bool = False
) -> DeliveryReport:
    """Send each due digest once; `now` stands in for the clock (tests, catch-up), `force` ignores
    the daily rhythm (every subscriber with open digest rows gets one now)."""
    factory = session_factory(engine)
    if smtp_settings is None:
        return DeliveryReport(configured=False, pending=outbox.count_open(factory, "digest"))
    now = now or utcnow()
    report = DeliveryReport()
    due = due_subscribers(factory, now, force)
    if due:
        try:
            with SmtpMailer(smtp_settings) as mailer:
                for subscriber_id in due:
                    if not _send_digest(factory, mailer, smtp_settings, subscriber_id, now, report):
                        break
        except SmtpUnavailable as exc:
            report.error = f"SMTP server unavailable: {exc}"
            log.warning("%s; digests stay pending", report.error)
    report.pending = outbox.count_open(factory, "digest")
    return report


def _send_digest(
    factory: sessionmaker[Session],
    mailer: SmtpMailer,
    settings: SmtpSettings,
    subscriber_id: int,
    now: datetime,
    report: DeliveryReport,
) -> bool:
    """Send one subscriber's digest(s); False when the server went away (stop the pass)."""
    owner = outbox.new_owner()
    rows = outbox.claim_digest_rows(factory, subscriber_id, owner, now)
    if not rows:
        return True
    with factory() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        email = subscriber.email
    # Rows that were already part of a digest whose sending was not confirmed go out again as that
    # same digest (same Message-ID); the others make a new one.
    batches: dict[str, list[OutboxMessage]] = {}
    fresh = [r for r in rows if r.message_id is None]
    for row in rows:
        if row.message_id is not None:
            batches.setdefault(row.message_id, []).append(row)
    if fresh:
        message_id = outbox.message_id_for(email, [r.event_id for r in fresh], settings.mail_domain)
        outbox.set_message_id(factory, [r.id for r in fresh], owner, message_id)
        batches.setdefault(message_id, []).extend(fresh)
    sent_any = False
    for message_id, batch in batches.items():
        ids = [r.id for r in batch]
        try:
            with factory() as session:
                views = [_view(session, r.event_id) for r in batch]
            message = digest_message(group_entries(views), views, email, settings.mail_from, message_id, now)
        except Exception as exc:  # a rendering bug must not hold back the other digests
            log.exception("rendering the digest for subscriber %d failed", subscriber_id)
            outbox.release(factory, ids, owner, f"rendering failed: {type(exc).__name__}: {exc}")
            continue
        try:
            mailer.send(message, [email])
        except SmtpUnavailable as exc:
            report.error = f"SMTP server unavailable: {exc}"
            outbox.release(factory, [r.id for r in rows], owner, report.error)
            return False
        except SmtpRejected as exc:
            report.failed += outbox.release(factory, ids, owner, f"refused: {exc}", permanent=exc.permanent)
            continue
        report.messages_sent += 1
        report.alerts_sent += outbox.mark_sent(factory, ids, owner, now)
        sent_any = True
    if sent_any:
        with unit_of_work(factory) as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is not None:
                subscriber.last_digest_at = now
    return True


def _view(session: Session, event_id: int) -> EventView:
    event = session.get(ChangeEvent, event_id)
    assert event is not None
    return build_event_view(session, event)
