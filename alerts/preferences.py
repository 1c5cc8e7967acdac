"""Subscribers' own choices (issue 17): one-click unsubscribe, filters, digest hour and zone.

Kept in subscriber_preferences, which outranks the config for that address (alerts.subscriptions):
- opted out: nothing more is queued, and what was pending is cancelled (kept, marked) in the same
  transaction, so neither an alert nor a digest goes out after the opt-out commits;
- custom filters: one rule (sources, keywords, events, immediate or digest) replaces the config's
  entries; pending alerts move between immediate and digest as the choice says.
Every change is one transaction; bad input is refused whole (PreferenceError) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from alerts.identity import DEFAULT_TIMEZONE, Identity, InvalidToken, read_token, valid_zone, zone
from alerts.subscriptions import Rule, _tuples, follow_digest_choice, preference_rule
from storage.db import unit_of_work
from storage.models import OutboxMessage, Source, Subscriber, SubscriberPreference, utcnow
from storage.vocabulary import SUBSCRIBABLE_EVENTS

# The change events, and `important`: a change an analyst marked important (alerts.marks).
EVENT_KINDS = tuple(str(k) for k in SUBSCRIBABLE_EVENTS)
MAX_FOLLOWS = 50
DEFAULT_DIGEST_HOUR = 8
MAX_KEYWORDS = 50
MAX_KEYWORD_CHARS = 100


class PreferenceError(ValueError):
    """Input the preferences page cannot take; the message says which field and why."""


@dataclass(frozen=True)
class Preferences:
    """What the preferences page shows, and what decides a subscriber's digest time."""

    subscriber_id: int
    email: str
    active: bool  # still in the config
    opted_out_at: datetime | None
    custom: bool
    rules: tuple[Rule, ...]  # the rules in force (own or the config's)
    digest_hour: int
    digest_timezone: str
    token_generation: int

    @property
    def rule(self) -> Rule:
        """The one rule the page edits: the own rule, or the config's entries merged."""
        if len(self.rules) == 1:
            return self.rules[0]
        sources = tuple(dict.fromkeys(s for r in self.rules for s in r.sources))
        return Rule(
            ("*",) if "*" in sources else sources,
            tuple(dict.fromkeys(k for r in self.rules for k in r.keywords))
            if all(r.keywords for r in self.rules)
            else (),
            tuple(k for k in EVENT_KINDS if any(k in r.events for r in self.rules)),
            all(r.digest for r in self.rules) if self.rules else False,
            tuple(dict.fromkeys(f for r in self.rules for f in r.follows))
            if all(r.follows for r in self.rules)
            else (),
        )

    @property
    def receives_digest(self) -> bool:
        return any(r.digest for r in self.rules)


def load(session: Session, subscriber_id: int) -> Preferences | None:
    subscriber = session.scalars(
        select(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .options(selectinload(Subscriber.subscriptions))
    ).one_or_none()
    if subscriber is None:
        return None
    own = session.get(SubscriberPreference, subscriber_id)
    if own is not None and own.custom:
        rules: tuple[Rule, ...] = (preference_rule(own),)
    else:
        rules = tuple(Rule(*_tuples(r)) for r in subscriber.subscriptions)
    return Preferences(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        active=bool(subscriber.active),
        opted_out_at=own.opted_out_at if own else None,
        custom=bool(own and own.custom),
        rules=rules,
        digest_hour=own.digest_hour if own else DEFAULT_DIGEST_HOUR,
        digest_timezone=own.digest_timezone if own else DEFAULT_TIMEZONE,
        token_generation=own.token_generation if own else 1,
    )


def subscriber_for_token(factory: sessionmaker[Session], identity: Identity, token: str) -> int:
    """The subscriber a token names; InvalidToken when it is forged, tampered with, of an older
    generation, or names no subscriber."""
    subscriber_id, generation = read_token(identity, token)
    with factory() as session:
        if session.get(Subscriber, subscriber_id) is None:
            raise InvalidToken("no such subscriber")
        own = session.get(SubscriberPreference, subscriber_id)
        if generation != (own.token_generation if own else 1):
            raise InvalidToken("an older link: use the one in your latest mail")
    return subscriber_id


def token_generation(session: Session, subscriber_id: int) -> int:
    own = session.get(SubscriberPreference, subscriber_id)
    return own.token_generation if own else 1


def _own(session: Session, subscriber_id: int) -> SubscriberPreference:
    own = session.get(SubscriberPreference, subscriber_id, with_for_update=True)
    if own is None:
        own = SubscriberPreference(
            subscriber_id=subscriber_id,
            custom=False,
            digest_hour=DEFAULT_DIGEST_HOUR,
            digest_timezone=DEFAULT_TIMEZONE,
            token_generation=1,
            updated_at=utcnow(),
        )
        session.add(own)
    return own


def opt_out(
    factory: sessionmaker[Session], subscriber_id: int, via: str, now: datetime | None = None
) -> bool:
    """Stop every mail to the subscriber; True when this call opted it out (False: it already was)."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        own = _own(session, subscriber_id)
        if own.opted_out_at is not None:
            return False
        own.opted_out_at = now
        own.opted_out_via = via
        own.updated_at = now
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.subscriber_id == subscriber_id, OutboxMessage.status == "pending")
            .values(status="cancelled", last_error=f"unsubscribed ({via})")
            .execution_options(synchronize_session=False)
        )
        return True


def resubscribe(factory: sessionmaker[Session], subscriber_id: int, now: datetime | None = None) -> None:
    """Undo an opt-out. New links are issued: those of older mails (which may have been forwarded)
    no longer work. Alerts cancelled by the opt-out stay cancelled."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        own = _own(session, subscriber_id)
        if own.opted_out_at is None:
            return
        own.opted_out_at = None
        own.opted_out_via = None
        own.token_generation += 1
        own.updated_at = now


def _clean_list(values: Sequence[str], field: str, limit: int, chars: int) -> list[str]:
    out: list[str] = []
    for value in values:
        value = " ".join(str(value).split())
        if not value:
            continue
        if len(value) > chars:
            raise PreferenceError(f"{field}: {value[:20]}… is longer than {chars} characters")
        if value not in out:
            out.append(value)
    if len(out) > limit:
        raise PreferenceError(f"{field}: at most {limit}")
    return out


def save(
    factory: sessionmaker[Session],
    subscriber_id: int,
    *,
    sources: Sequence[str],
    keywords: Sequence[str],
    events: Sequence[str],
    digest: bool,
    digest_hour: int,
    digest_timezone: str,
    now: datetime | None = None,
    follows: Sequence[str] = (),
) -> None:
    """The subscriber's own rule and digest time, replacing the config's entries for it.
    `follows`: 发文字号 or titles; only changes to documents that reference one of them."""
    now = now or utcnow()
    unknown_events = set(events) - set(EVENT_KINDS)
    if unknown_events:
        raise PreferenceError(f"events: unknown kind(s) {', '.join(sorted(unknown_events))}")
    events = [e for e in EVENT_KINDS if e in set(events)]
    if not events:
        raise PreferenceError("events: choose at least one kind (or unsubscribe)")
    if not 0 <= digest_hour <= 23:
        raise PreferenceError("digest hour: 0 to 23")
    if not valid_zone(digest_timezone):
        raise PreferenceError(f"time zone: {digest_timezone!r} is not an IANA zone such as Asia/Shanghai")
    keyword_list = _clean_list(keywords, "keywords", MAX_KEYWORDS, MAX_KEYWORD_CHARS)
    follow_list = _clean_list(follows, "follows", MAX_FOLLOWS, 300)
    source_list = _clean_list(sources, "sources", 500, 64)
    with unit_of_work(factory) as session:
        if "*" in source_list or not source_list:
            source_list = ["*"]
        else:
            known = set(session.scalars(select(Source.id)))
            missing = [s for s in source_list if s not in known]
            if missing:
                raise PreferenceError(f"sources: unknown source(s) {', '.join(missing)}")
        own = _own(session, subscriber_id)
        own.custom = True
        own.sources = source_list
        own.keywords = keyword_list
        own.follows = follow_list or None
        own.events = events
        own.digest = digest
        own.digest_hour = digest_hour
        own.digest_timezone = digest_timezone
        own.updated_at = now
        session.flush()
        follow_digest_choice(session, subscriber_id, [preference_rule(own)])


def follow_config(factory: sessionmaker[Session], subscriber_id: int) -> None:
    """Drop the own rule: the config's entries apply again (digest time and opt-out stay)."""
    with unit_of_work(factory) as session:
        own = session.get(SubscriberPreference, subscriber_id)
        if own is not None and own.custom:
            own.custom = False
            own.updated_at = utcnow()
            subscriber = session.scalars(
                select(Subscriber)
                .where(Subscriber.id == subscriber_id)
                .options(selectinload(Subscriber.subscriptions))
            ).one()
            follow_digest_choice(
                session, subscriber_id, [Rule(*_tuples(r)) for r in subscriber.subscriptions]
            )


# --- digest time -----------------------------------------------------------------------------------


def _at(day: date, hour: int, zone_name: str) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone(zone_name))


def last_slot(now: datetime, hour: int = DEFAULT_DIGEST_HOUR, zone_name: str = DEFAULT_TIMEZONE) -> datetime:
    """The latest instant at or before `now` when it was `hour`:00 in the zone."""
    local = now.astimezone(zone(zone_name))
    slot = _at(local.date(), hour, zone_name)
    if slot > now:
        slot = _at(local.date() - timedelta(days=1), hour, zone_name)
    return slot


def next_slot(now: datetime, hour: int = DEFAULT_DIGEST_HOUR, zone_name: str = DEFAULT_TIMEZONE) -> datetime:
    """The first instant after `now` when it is `hour`:00 in the zone."""
    local = now.astimezone(zone(zone_name))
    slot = _at(local.date(), hour, zone_name)
    if slot <= now:
        slot = _at(local.date() + timedelta(days=1), hour, zone_name)
    return slot
