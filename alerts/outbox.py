"""The outbox's state changes, each its own short transaction.

A row is sent at most once per successful SMTP acceptance because a deliverer must first *claim* it
with a conditional UPDATE (pending, or sending with an expired lease → sending, with our lease):
on SQLite the write lock and on PostgreSQL the row lock make the second claimer's UPDATE match no
row. The row is marked sent only after the server accepted the message. A deliverer that dies between
the two leaves the row "sending"; once its lease expires the next deliverer resends it, with the
Message-ID fixed at the first claim, so the recipient's mail system can recognise the duplicate.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.db import unit_of_work
from storage.models import OutboxMessage, SentMail, Subscriber, SubscriberPreference

# Long enough for one SMTP transaction (a claim covers one message or one digest), short enough
# that a crashed deliverer's alerts go out on a later run.
LEASE = timedelta(minutes=10)
# A message the server refuses (5xx) is tried again after these waits, then given up ("failed"):
# a full mailbox or a receiving server's temporary policy block lasts hours, not the minute in which
# three immediate retries used to give up for good. Outages (no connection, 4xx) never count.
REFUSAL_BACKOFF = (
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=45),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=6),
    timedelta(hours=6),
)
MAX_REJECTIONS = len(REFUSAL_BACKOFF) + 1  # about 21 hours after the first refusal

OPEN_STATUSES = ("pending", "sending")


@dataclass(frozen=True)
class Claimed:
    """An outbox row this deliverer holds, with what sending it needs."""

    id: int
    subscriber_id: int
    email: str
    event_id: int
    mode: str
    message_id: str
    reason: str = "event"  # or "important": an analyst marked the change (alerts.marks)


def new_owner() -> str:
    """A lease owner token: unique per delivery pass."""
    return uuid.uuid4().hex


def message_id_for(
    subscriber_email: str, event_ids: Sequence[int], domain: str, store_id: str, reason: str = "event"
) -> str:
    """The same (store, subscriber, events) always gives the same Message-ID.

    `store_id` (alerts.identity.store_identity): event ids restart at 1 in every store, and without it
    two installations mailing one address produced the same Message-ID for different alerts.
    """
    ids = sorted(set(event_ids))
    key = f"{store_id}|{subscriber_email.lower()}|{','.join(map(str, ids))}"
    if reason != "event":  # the change's own alert keeps the Message-ID it always had
        key += f"|{reason}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    label = f"event-{ids[0]}" if len(ids) == 1 else f"digest-{len(ids)}"
    if reason != "event" and len(ids) == 1:
        label = f"{reason}-{ids[0]}"
    return f"<policywatch.{label}.{digest[:24]}@{domain}>"


def _claimable(now: datetime):
    return and_(
        or_(
            OutboxMessage.status == "pending",
            and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
        ),
        or_(OutboxMessage.retry_at.is_(None), OutboxMessage.retry_at <= now),
        not_opted_out(),
    )


def not_opted_out():
    """The row's subscriber did not opt out. Part of every claim, so a row left "sending" by a
    crashed deliverer is not resent after its subscriber unsubscribed."""
    # correlate_except: a query that joins subscriber_preferences itself must not swallow this one's.
    return ~(
        exists()
        .where(
            SubscriberPreference.subscriber_id == OutboxMessage.subscriber_id,
            SubscriberPreference.opted_out_at.is_not(None),
        )
        .correlate_except(SubscriberPreference)
    )


def due_ids(factory: sessionmaker[Session], mode: str, now: datetime) -> list[int]:
    """Rows of active subscribers that a deliverer may claim now, oldest first."""
    with factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage.id)
                .join(Subscriber, Subscriber.id == OutboxMessage.subscriber_id)
                .where(OutboxMessage.mode == mode, Subscriber.active.is_(True), _claimable(now))
                .order_by(OutboxMessage.id)
            )
        )


def claim_one(
    factory: sessionmaker[Session], row_id: int, owner: str, now: datetime, domain: str, store_id: str
) -> Claimed | None:
    """Claim one immediate row; None when another deliverer has it or it is no longer open."""
    with unit_of_work(factory) as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, _claimable(now))
            .values(
                status="sending",
                lease_owner=owner,
                lease_until=now + LEASE,
                attempts=OutboxMessage.attempts + 1,
                last_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.get(OutboxMessage, row_id, populate_existing=True)
        subscriber = session.get(Subscriber, row.subscriber_id) if row else None
        assert row is not None and subscriber is not None
        if row.message_id is None:
            row.message_id = message_id_for(subscriber.email, [row.event_id], domain, store_id, row.reason)
        return Claimed(
            row.id, row.subscriber_id, subscriber.email, row.event_id, row.mode, row.message_id, row.reason
        )


def claim_digest_rows(
    factory: sessionmaker[Session], subscriber_id: int, owner: str, now: datetime
) -> list[OutboxMessage]:
    """Claim every open digest row of one subscriber; returns the rows this deliverer got."""
    with unit_of_work(factory) as session:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.subscriber_id == subscriber_id,
                OutboxMessage.mode == "digest",
                _claimable(now),
            )
            .values(
                status="sending",
                lease_owner=owner,
                lease_until=now + LEASE,
                attempts=OutboxMessage.attempts + 1,
                last_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        rows = list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.lease_owner == owner, OutboxMessage.status == "sending")
                .order_by(OutboxMessage.event_id)
            )
        )
        session.expunge_all()
        return rows


def set_message_id(
    factory: sessionmaker[Session], row_ids: Sequence[int], owner: str, message_id: str
) -> None:
    """Fix the Message-ID of a digest batch before it is sent (kept for a resend after a crash)."""
    with unit_of_work(factory) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(row_ids), OutboxMessage.lease_owner == owner)
            .values(message_id=message_id)
            .execution_options(synchronize_session=False)
        )


def mark_sent(
    factory: sessionmaker[Session],
    row_ids: Sequence[int],
    owner: str,
    now: datetime,
    record: SentMail | None = None,
) -> int:
    """After the SMTP server accepted the message. Returns how many rows were still ours.

    `record`: the message as sent, kept for the Mail page in the same transaction, so the record and
    "sent" are both there or both absent (a crash before the commit resends and records then).
    """
    with unit_of_work(factory) as session:
        if record is not None:
            session.add(record)
        result = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(row_ids),
                OutboxMessage.lease_owner == owner,
                OutboxMessage.status == "sending",
            )
            .values(status="sent", sent_at=now, last_error=None, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def release(
    factory: sessionmaker[Session],
    row_ids: Sequence[int],
    owner: str,
    error: str,
    *,
    permanent: bool = False,
    now: datetime | None = None,
) -> int:
    """Back to pending with the error. A permanent refusal (5xx) counts against the message: it is
    tried again after the next wait of REFUSAL_BACKOFF, and given up ("failed") at MAX_REJECTIONS.

    Returns how many rows were given up.
    """
    error = error[:2000]
    with unit_of_work(factory) as session:
        mine = (
            OutboxMessage.id.in_(row_ids),
            OutboxMessage.lease_owner == owner,
            OutboxMessage.status == "sending",
        )
        failed = 0
        if permanent:
            now = now or datetime.now(UTC)
            for row in session.scalars(select(OutboxMessage).where(*mine)):
                row.rejections += 1
                row.lease_owner = row.lease_until = None
                row.last_error = error
                if row.rejections >= MAX_REJECTIONS:
                    row.status = "failed"
                    failed += 1
                else:
                    row.status = "pending"
                    row.retry_at = now + REFUSAL_BACKOFF[row.rejections - 1]
            session.flush()
        session.execute(
            update(OutboxMessage)
            .where(*mine)
            .values(status="pending", last_error=error, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return failed


def note_unavailable(
    factory: sessionmaker[Session], row_ids: Sequence[int], error: str, now: datetime
) -> None:
    """The server could not be reached: the rows stay pending, with the error and one more attempt."""
    if not row_ids:
        return
    with unit_of_work(factory) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(row_ids), OutboxMessage.status == "pending")
            .values(last_error=error[:2000], last_attempt_at=now, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )


def oldest_open(
    factory: sessionmaker[Session], mode: str | None = None
) -> tuple[datetime | None, str | None]:
    """When the oldest open row of an active subscriber was queued, and its last error."""
    with factory() as session:
        query = (
            select(OutboxMessage.created_at, OutboxMessage.last_error)
            .join(Subscriber, Subscriber.id == OutboxMessage.subscriber_id)
            .where(OutboxMessage.status.in_(OPEN_STATUSES), Subscriber.active.is_(True), not_opted_out())
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
            .limit(1)
        )
        if mode is not None:
            query = query.where(OutboxMessage.mode == mode)
        row = session.execute(query).first()
    return (row[0], row[1]) if row else (None, None)


def count_open(factory: sessionmaker[Session], mode: str | None = None) -> int:
    """Rows of active subscribers not sent yet (pending, or claimed and not confirmed)."""
    with factory() as session:
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .join(Subscriber, Subscriber.id == OutboxMessage.subscriber_id)
            .where(OutboxMessage.status.in_(OPEN_STATUSES), Subscriber.active.is_(True), not_opted_out())
        )
        if mode is not None:
            query = query.where(OutboxMessage.mode == mode)
        return int(session.scalar(query) or 0)
