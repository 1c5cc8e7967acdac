"""Subscriptions: synced from the config into the database, matched against each new change event.

Matching rules (CONTRACT.md, "subscribers"):
- the event's kind is in the entry's `events`, its source in `sources` (or "*");
- `new` is alerted only for a relevant (digital-economy) document; `republished` (a repost) is never
  alerted as new: only an entry that lists `republished` itself gets it;
- `keywords`: any of them in the changed text (the sentences the diff inserted, deleted, replaced or
  moved, both sides), or in the whole text of a new / removed document; compared after the same
  normalisation as the stored text (NFKC), case-insensitively;
- no `keywords`: any change to a relevant document.
An address listed in several entries gets one alert per event: immediately if any matching entry is
immediate, else in its digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from policywatch.config import SubscriberConfig
from policywatch.extraction import normalise_text
from storage.db import unit_of_work
from storage.models import (
    ChangeEvent,
    DocumentVersion,
    OutboxMessage,
    Subscriber,
    SubscriberPreference,
    Subscription,
    utcnow,
)


@dataclass(frozen=True)
class Rule:
    """One config entry of a subscriber."""

    sources: tuple[str, ...]
    keywords: tuple[str, ...]
    events: tuple[str, ...]
    digest: bool
    follows: tuple[str, ...] = ()  # 发文字号 or titles the event's document must reference


@dataclass(frozen=True)
class ActiveSubscriber:
    id: int
    email: str
    rules: tuple[Rule, ...]


def _rule_of(entry: SubscriberConfig) -> Rule:
    return Rule(
        tuple(entry.sources),
        tuple(entry.keywords),
        tuple(entry.events),
        bool(entry.digest),
        tuple(entry.follows),
    )


def sync_subscriptions(factory: sessionmaker[Session], entries: Sequence[SubscriberConfig]) -> None:
    """Make the database's subscribers what the config says; addresses that left it become inactive.

    Idempotent and cheap (writes only what changed), so every run can call it. A concurrent run
    inserting the same new address makes one attempt fail on the unique e-mail: the retry sees it.
    """
    try:
        _sync(factory, entries)
    except IntegrityError:
        _sync(factory, entries)


def _sync(factory: sessionmaker[Session], entries: Sequence[SubscriberConfig]) -> None:
    wanted: dict[str, list[tuple[int, Rule]]] = {}
    for position, entry in enumerate(entries):
        wanted.setdefault(entry.email.strip().lower(), []).append((position, _rule_of(entry)))
    now = utcnow()
    with unit_of_work(factory) as session:
        existing = {
            s.email: s
            for s in session.scalars(select(Subscriber).options(selectinload(Subscriber.subscriptions)))
        }
        for email, rules in wanted.items():
            subscriber = existing.get(email)
            if subscriber is None:
                subscriber = Subscriber(email=email, active=True, created_at=now, updated_at=now)
                session.add(subscriber)
            current = [(s.position, Rule(*_tuples(s))) for s in subscriber.subscriptions]
            if current != rules or not subscriber.active:
                subscriber.active = True
                subscriber.updated_at = now
                subscriber.subscriptions = [
                    Subscription(
                        position=position,
                        sources=list(rule.sources),
                        keywords=list(rule.keywords),
                        events=list(rule.events),
                        digest=rule.digest,
                        follows=list(rule.follows) or None,
                    )
                    for position, rule in rules
                ]
                session.flush()
                own = session.get(SubscriberPreference, subscriber.id)
                if own is None or not own.custom:  # the subscriber's own choice outranks the config's
                    follow_digest_choice(session, subscriber.id, [rule for _, rule in rules])
        gone = [s.id for email, s in existing.items() if email not in wanted and s.active]
        if gone:
            for subscriber_id in gone:
                subscriber = session.get(Subscriber, subscriber_id)
                assert subscriber is not None
                subscriber.active = False
                subscriber.updated_at = now
            # Unsubscribed: what was not sent yet is not sent (kept, marked, for the record).
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.subscriber_id.in_(gone), OutboxMessage.status == "pending")
                .values(status="cancelled", last_error="unsubscribed (no longer in the configuration)")
                .execution_options(synchronize_session=False)
            )


def _tuples(
    s: Subscription,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], bool, tuple[str, ...]]:
    return (
        tuple(s.sources or ()),
        tuple(s.keywords or ()),
        tuple(s.events or ()),
        bool(s.digest),
        tuple(s.follows or ()),
    )


def follow_digest_choice(session: Session, subscriber_id: int, rules: list[Rule]) -> None:
    """A subscriber who switched between immediate and digest gets what is pending the new way."""
    target = None
    if all(rule.digest for rule in rules):
        target = ("immediate", "digest")
    elif not any(rule.digest for rule in rules):
        target = ("digest", "immediate")
    if target is None:
        return
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.subscriber_id == subscriber_id,
            OutboxMessage.status == "pending",
            OutboxMessage.mode == target[0],
        )
        .values(mode=target[1])
        .execution_options(synchronize_session=False)
    )


def active_subscribers(session: Session) -> list[ActiveSubscriber]:
    """Subscribers in the config who did not opt out, each with its rules: its own (chosen on the
    web app's preferences page) when it has them, else the config's entries."""
    rows = session.scalars(
        select(Subscriber)
        .where(Subscriber.active.is_(True))
        .options(selectinload(Subscriber.subscriptions))
        .order_by(Subscriber.id)
    )
    preferences = {p.subscriber_id: p for p in session.scalars(select(SubscriberPreference))}
    out = []
    for s in rows:
        if not s.subscriptions:
            continue
        own = preferences.get(s.id)
        if own is not None and own.opted_out_at is not None:
            continue  # opted out: nothing is queued for it any more
        if own is not None and own.custom:
            rules: tuple[Rule, ...] = (preference_rule(own),)
        else:
            rules = tuple(Rule(*_tuples(r)) for r in s.subscriptions)
        out.append(ActiveSubscriber(s.id, s.email, rules))
    return out


def preference_rule(own: SubscriberPreference) -> Rule:
    return Rule(
        tuple(own.sources or ("*",)),
        tuple(own.keywords or ()),
        tuple(own.events or ()),
        bool(own.digest),
        tuple(own.follows or ()),
    )


class EventText:
    """The text an event's keywords are matched in, computed only when a keyword needs it."""

    def __init__(self, session: Session, event: ChangeEvent):
        self.session = session
        self.event = event

    def _version(self, version_id: int | None) -> DocumentVersion | None:
        return self.session.get(DocumentVersion, version_id) if version_id is not None else None

    @cached_property
    def referenced(self) -> frozenset[str]:
        """Keys (canonical 发文字号, title keys) of every document the event's version references."""
        from policywatch.policy_graph import reference_keys

        version_id = self.event.new_version_id or self.event.old_version_id
        return reference_keys(self.session, version_id) if version_id is not None else frozenset()

    @cached_property
    def text(self) -> str:
        event = self.event
        old, new = self._version(event.old_version_id), self._version(event.new_version_id)
        if event.kind in ("changed", "restored") and old is not None and new is not None and old.id != new.id:
            from policywatch.classify import diff_versions

            parts: list[str] = []
            for block in diff_versions(old, new).changes:
                parts.extend(p for p in (block.old, block.new) if p)
            return _comparable("\n".join(parts))
        version = new or old
        title = event.title or ""
        return _comparable(f"{title}\n{version.normalized_text if version else ''}")


def _comparable(text: str) -> str:
    return normalise_text(text).casefold()


def keyword_matches(keywords: Sequence[str], text: str) -> bool:
    return any(k and _comparable(k) in text for k in keywords)


def rule_matches(rule: Rule, event: ChangeEvent, text: EventText) -> bool:
    if event.kind not in rule.events:
        return False
    if "*" not in rule.sources and event.source_id not in rule.sources:
        return False
    if rule.follows:
        # Following a document: whatever cites, implements, amends or repeals it is wanted, relevant
        # or not by the digital-economy terms (the analyst said which policy matters).
        from policywatch.policy_graph import follow_key

        if not any(follow_key(f) in text.referenced for f in rule.follows):
            return False
        return keyword_matches(rule.keywords, text.text) if rule.keywords else True
    if event.kind == "new" and not event.relevant:
        return False
    if rule.keywords:
        return keyword_matches(rule.keywords, text.text)
    return bool(event.relevant)


def delivery_mode(subscriber: ActiveSubscriber, event: ChangeEvent, text: EventText) -> str | None:
    """ "immediate", "digest", or None when no entry of the subscriber wants the event."""
    mode = None
    for rule in subscriber.rules:
        if rule_matches(rule, event, text):
            if not rule.digest:
                return "immediate"
            mode = "digest"
    return mode


def outbox_row(
    subscriber_id: int, event_id: int, mode: str, now: datetime, reason: str = "event"
) -> OutboxMessage:
    """A pending alert: the change itself (`event`) or an analyst's `important` mark of it."""
    return OutboxMessage(
        subscriber_id=subscriber_id,
        event_id=event_id,
        mode=mode,
        reason=reason,
        status="pending",
        attempts=0,
        created_at=now,
    )


def queue_alerts(
    session: Session, event: ChangeEvent, subscribers: Sequence[ActiveSubscriber], now: datetime | None = None
) -> int:
    """Add the outbox rows for a just-flushed event, in the caller's transaction; returns how many."""
    if event.id is None:
        session.flush()
    text = EventText(session, event)
    queued = 0
    for subscriber in subscribers:
        mode = delivery_mode(subscriber, event, text)
        if mode is None:
            continue
        session.add(outbox_row(subscriber.id, event.id, mode, now or utcnow()))
        queued += 1
    if queued:
        session.flush()
    return queued
