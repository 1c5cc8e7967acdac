"""Daily digests: `send_due_digests(engine, smtp_settings)`.

A subscriber's digest goes out once per local day at its chosen hour (subscriber_preferences;
default 08:00 Asia/Shanghai): it is due when the last such hour ("the slot") has passed, no digest
was sent since the slot, and an open digest row was queued before the slot. So a scheduler that
runs hourly (or late) sends it at the first run after the hour, never twice a local day, and a row
queued after the slot waits for the next day's digest, which covers everything since the last one.
An empty digest is never sent. The digest groups its events by source and collapses the reposts of one policy
(same root document or same 发文字号) into one entry. The rows of one digest are claimed together
and share one Message-ID, fixed before sending: a resend after a crash is the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from functools import partial

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts import outbox
from alerts.identity import Identity, make_token, store_identity
from alerts.preferences import DEFAULT_DIGEST_HOUR, last_slot, next_slot
from alerts.render import (
    EventView,
    SubscriberLinks,
    build_event_view,
    digest_message,
    render_digest,
)
from alerts.sending import DeliveryReport, Outgoing, send_queue
from alerts.smtp import SmtpSettings
from storage.db import session_factory, unit_of_work
from storage.models import ChangeEvent, OutboxMessage, Subscriber, SubscriberPreference, utcnow

log = logging.getLogger(__name__)

DEFAULT_ZONE = "Asia/Shanghai"


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


@dataclass(frozen=True)
class DigestState:
    """One subscriber's open digest: how many rows, since when, and when it is (or was) due."""

    subscriber_id: int
    email: str
    open_rows: int
    oldest_row_at: datetime
    last_digest_at: datetime | None
    digest_hour: int
    digest_timezone: str

    def slot(self, now: datetime) -> datetime:
        return last_slot(now, self.digest_hour, self.digest_timezone)

    def due(self, now: datetime) -> bool:
        slot = self.slot(now)
        sent_since = self.last_digest_at is not None and self.last_digest_at >= slot
        return not sent_since and self.oldest_row_at <= slot

    def next_at(self, now: datetime) -> datetime:
        """When the open rows go out (now or in the past when due: the next run sends them)."""
        if self.due(now):
            return self.slot(now)
        return next_slot(max(now, self.oldest_row_at), self.digest_hour, self.digest_timezone)


def digest_states(factory: sessionmaker[Session], subscriber_id: int | None = None) -> list[DigestState]:
    """Active, not opted-out subscribers with open digest rows."""
    with factory() as session:
        query = (
            select(
                Subscriber.id,
                Subscriber.email,
                Subscriber.last_digest_at,
                SubscriberPreference.digest_hour,
                SubscriberPreference.digest_timezone,
                func.count(OutboxMessage.id).label("open_rows"),
                func.min(OutboxMessage.created_at).label("oldest"),
            )
            .join(OutboxMessage, OutboxMessage.subscriber_id == Subscriber.id)
            .outerjoin(SubscriberPreference, SubscriberPreference.subscriber_id == Subscriber.id)
            .where(
                Subscriber.active.is_(True),
                OutboxMessage.mode == "digest",
                OutboxMessage.status.in_(outbox.OPEN_STATUSES),
                outbox.not_opted_out(),
            )
            .group_by(
                Subscriber.id,
                Subscriber.email,
                Subscriber.last_digest_at,
                SubscriberPreference.digest_hour,
                SubscriberPreference.digest_timezone,
            )
            .having(func.count(OutboxMessage.id) > 0)
            .order_by(Subscriber.id)
        )
        if subscriber_id is not None:
            query = query.where(Subscriber.id == subscriber_id)
        rows = session.execute(query).all()
    from storage.models import UTCDateTime

    as_utc = UTCDateTime().process_result_value  # min() over a column loses its type on SQLite
    return [
        DigestState(
            subscriber_id=row.id,
            email=row.email,
            open_rows=int(row.open_rows),
            oldest_row_at=_aware(row.oldest, as_utc),
            last_digest_at=row.last_digest_at,
            digest_hour=DEFAULT_DIGEST_HOUR if row.digest_hour is None else int(row.digest_hour),
            digest_timezone=row.digest_timezone or DEFAULT_ZONE,
        )
        for row in rows
    ]


def _aware(value: object, convert) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return convert(value, None)


def due_subscribers(factory: sessionmaker[Session], now: datetime, force: bool = False) -> list[int]:
    """Subscribers whose digest is due now (every one with open digest rows with `force`)."""
    return [state.subscriber_id for state in digest_states(factory) if force or state.due(now)]


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
        send_queue(factory, smtp_settings, _Digests(factory, smtp_settings, due, now), now, report)
    report.pending = outbox.count_open(factory, "digest")
    return report


class _Digests:
    """The due digests for alerts.sending: a subscriber's open rows are claimed together when the
    loop reaches that subscriber, and go out as one message per Message-ID."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: SmtpSettings,
        subscriber_ids: Sequence[int],
        now: datetime,
    ) -> None:
        self.factory, self.settings, self.now = factory, settings, now
        self.subscriber_ids = list(subscriber_ids)
        # The rows claimed for the subscriber in hand, and the owner that holds them.
        self.holding: tuple[list[int], str] | None = None

    def messages(self) -> Iterator[Outgoing]:
        for subscriber_id in self.subscriber_ids:
            yield from self._subscriber_messages(subscriber_id)

    def _subscriber_messages(self, subscriber_id: int) -> Iterator[Outgoing]:
        factory, settings = self.factory, self.settings
        owner = outbox.new_owner()
        rows = outbox.claim_digest_rows(factory, subscriber_id, owner, self.now)
        if not rows:
            return
        identity = store_identity(factory)
        with factory() as session:
            subscriber = session.get(Subscriber, subscriber_id)
            assert subscriber is not None
            email = subscriber.email
            links, zone_name = _links_and_zone(session, identity, settings.public_url, subscriber_id)
        # Rows that were already part of a digest whose sending was not confirmed go out again as that
        # same digest (same Message-ID); the others make a new one.
        batches: dict[str, list[OutboxMessage]] = {}
        fresh = [r for r in rows if r.message_id is None]
        for row in rows:
            if row.message_id is not None:
                batches.setdefault(row.message_id, []).append(row)
        if fresh:
            message_id = outbox.message_id_for(
                email, [r.event_id for r in fresh], settings.mail_domain, identity.store_id
            )
            outbox.set_message_id(factory, [r.id for r in fresh], owner, message_id)
            batches.setdefault(message_id, []).extend(fresh)
        items = [
            Outgoing(
                kind="digest",
                row_ids=[r.id for r in batch],
                owner=owner,
                recipient=email,
                subscriber_id=subscriber_id,
                event_ids=[r.event_id for r in batch],
                build=partial(self._message, batch, email, message_id, links, zone_name),
                label=f"the digest for subscriber {subscriber_id}",
            )
            for message_id, batch in batches.items()
        ]
        self.holding = ([r.id for r in rows], owner)
        yield from items
        self.holding = None
        # (Not reached when the server went away mid-way: the day's digest is then not done.)
        if any(item.sent for item in items):
            with unit_of_work(factory) as session:
                subscriber = session.get(Subscriber, subscriber_id)
                if subscriber is not None:
                    subscriber.last_digest_at = self.now

    def _message(
        self,
        batch: Sequence[OutboxMessage],
        email: str,
        message_id: str,
        links: SubscriberLinks | None,
        zone_name: str,
    ) -> EmailMessage:
        public_url = self.settings.public_url
        with self.factory() as session:
            views = [_view(session, e, public_url, reason) for e, reason in _entries(batch)]
        return digest_message(
            group_entries(views),
            views,
            email,
            self.settings.mail_from,
            message_id,
            self.now,
            links,
            zone_name,
        )

    def unavailable(self, error: str) -> None:
        # The subscriber in hand keeps none of its claimed rows (sent ones are no longer ours, so
        # they stay sent); the subscribers not reached were never claimed.
        if self.holding is not None:
            row_ids, owner = self.holding
            outbox.release(self.factory, row_ids, owner, error)
        log.warning("%s; digests stay pending", error)


def _view(session: Session, event_id: int, public_url: str | None = None, reason: str = "event") -> EventView:
    event = session.get(ChangeEvent, event_id)
    assert event is not None
    return build_event_view(session, event, public_url, reason)


def _entries(rows: Sequence[tuple[int, str]] | Sequence[OutboxMessage]) -> list[tuple[int, str]]:
    """One digest entry per change, in change order: a change that is both new to the subscriber
    and marked important (two outbox rows) is one entry that says it was marked."""
    reasons: dict[int, str] = {}
    for row in rows:
        event_id, reason = (row.event_id, row.reason) if isinstance(row, OutboxMessage) else row
        if reasons.get(event_id) != "important":
            reasons[event_id] = reason
    return sorted(reasons.items())


def _links_and_zone(
    session: Session, identity: Identity, public_url: str | None, subscriber_id: int
) -> tuple[SubscriberLinks | None, str]:
    own = session.get(SubscriberPreference, subscriber_id)
    token = make_token(identity, subscriber_id, own.token_generation if own else 1)
    return SubscriberLinks.of(public_url, token), (own.digest_timezone if own else DEFAULT_ZONE)


@dataclass(frozen=True)
class DigestPreview:
    subject: str
    text: str
    html: str
    count: int
    next_at: datetime | None


def preview_digest(
    engine: Engine, subscriber_id: int, public_url: str | None = None, now: datetime | None = None
) -> DigestPreview | None:
    """The subscriber's next digest as it would be rendered now, without claiming or sending
    anything (the web app's operator preview); None when nothing is waiting for it."""
    factory = session_factory(engine)
    now = now or utcnow()
    states = digest_states(factory, subscriber_id)
    if not states:
        return None
    [state] = states
    identity = store_identity(factory)
    with factory() as session:
        open_rows = session.execute(
            select(OutboxMessage.event_id, OutboxMessage.reason)
            .where(
                OutboxMessage.subscriber_id == subscriber_id,
                OutboxMessage.mode == "digest",
                OutboxMessage.status.in_(outbox.OPEN_STATUSES),
            )
            .order_by(OutboxMessage.event_id)
        ).all()
        views = [
            _view(session, e, public_url, reason) for e, reason in _entries([(r[0], r[1]) for r in open_rows])
        ]
        links, zone_name = _links_and_zone(session, identity, public_url, subscriber_id)
    from alerts.identity import zone

    day = state.next_at(now).astimezone(zone(zone_name)).strftime("%Y-%m-%d")
    subject, text, html = render_digest(group_entries(views), state.email, day, len(views), links)
    return DigestPreview(subject, text, html, len(views), state.next_at(now))
