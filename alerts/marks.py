"""Triage: analysts mark changes `important`, `reviewed` or `not significant` (with a note), or take
the mark off (`cleared`).

Significance and relevance stay automatic; marks are the human layer on top. Every mark is a new
`ChangeMark` row (who, when, what, why): the rows are the audit trail and are never changed; the
newest one is the change's current mark, copied to `ChangeEvent.mark` in the same transaction so
lists filter on it. Marking a change `important` queues one alert (`reason="important"`) for every
subscriber who asked for `important` among its events and follows the change's source, in the same
transaction as the mark: sent once, however often the change is marked important again, and not
taken back by a later mark.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ChangeEvent, ChangeMark, OutboxMessage, utcnow
from storage.vocabulary import CURRENT_MARKS, Mark, MarkFilter

MARKS = tuple(m.value for m in CURRENT_MARKS)
CLEARED = Mark.CLEARED.value
MARK_LABELS = {m.value: (m.label_zh, m.label, m.colour) for m in CURRENT_MARKS}
# The filter values of the change lists: a mark, or `unreviewed` (no mark).
MARK_FILTERS = tuple(f.value for f in MarkFilter)
MAX_NOTE_CHARS = 2000
MAX_USER_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class MarkError(ValueError):
    """A mark that cannot be stored (unknown mark, note too long, control characters)."""


class NoSuchChange(LookupError):
    pass


@dataclass(frozen=True)
class MarkResult:
    mark: ChangeMark
    alerts_queued: int


def _clean(value: str, what: str, limit: int) -> str:
    value = value.replace("\r\n", "\n").strip()
    if _CONTROL.search(value):
        raise MarkError(f"{what}: control characters are not allowed")
    if len(value) > limit:
        raise MarkError(f"{what}: at most {limit} characters, got {len(value)}")
    return value


def mark_change(
    session: Session, event_id: int, mark: str, note: str, user: str, now: datetime | None = None
) -> MarkResult:
    """Record `user`'s mark on a change in the caller's transaction (see the module docstring)."""
    if mark not in (*MARKS, CLEARED):
        raise MarkError(f"mark: one of {', '.join((*MARKS, CLEARED))}, got {mark!r}")
    note = _clean(note or "", "note", MAX_NOTE_CHARS)
    user = _clean(user or "", "user", MAX_USER_CHARS)
    if not user:
        raise MarkError("user: a mark needs the name of who made it")
    event = session.get(ChangeEvent, event_id)
    if event is None:
        raise NoSuchChange(f"no change {event_id}")
    row = ChangeMark(event_id=event.id, mark=mark, note=note, user=user, at=now or utcnow())
    session.add(row)
    event.mark = None if mark == CLEARED else mark
    queued = queue_important(session, event, row.at) if mark == "important" else 0
    session.flush()
    return MarkResult(row, queued)


def queue_important(session: Session, event: ChangeEvent, now: datetime) -> int:
    """The `important` alerts of a change just marked so: one per subscriber who wants them (and
    has none for this change yet)."""
    from alerts.subscriptions import active_subscribers, outbox_row

    already = set(
        session.scalars(
            select(OutboxMessage.subscriber_id).where(
                OutboxMessage.event_id == event.id, OutboxMessage.reason == "important"
            )
        )
    )
    queued = 0
    for subscriber in active_subscribers(session):
        if subscriber.id in already:
            continue
        mode = None
        for rule in subscriber.rules:
            if "important" not in rule.events:
                continue
            if "*" not in rule.sources and event.source_id not in rule.sources:
                continue
            if not rule.digest:
                mode = "immediate"
                break
            mode = "digest"
        if mode is None:
            continue
        session.add(outbox_row(subscriber.id, event.id, mode, now, reason="important"))
        queued += 1
    return queued


def mark_history(session: Session, event_id: int) -> list[ChangeMark]:
    """Every mark of a change, oldest first (the audit trail)."""
    return list(
        session.scalars(select(ChangeMark).where(ChangeMark.event_id == event_id).order_by(ChangeMark.id))
    )


def current_marks(session: Session, event_ids: Sequence[int]) -> dict[int, ChangeMark]:
    """The newest mark row of each of these changes (those that have one)."""
    out: dict[int, ChangeMark] = {}
    ids = list(event_ids)
    for start in range(0, len(ids), 500):
        for row in session.scalars(
            select(ChangeMark)
            .where(ChangeMark.event_id.in_(ids[start : start + 500]))
            .order_by(ChangeMark.id)
        ):
            out[row.event_id] = row
    return out


def important_mark(session: Session, event_id: int) -> ChangeMark | None:
    """The newest `important` mark of a change (what its important alert says)."""
    return session.scalars(
        select(ChangeMark)
        .where(ChangeMark.event_id == event_id, ChangeMark.mark == "important")
        .order_by(ChangeMark.id.desc())
        .limit(1)
    ).first()


def form_token(secret: bytes, user: str) -> str:
    """The CSRF token of `user`'s mark forms: only a page of this app, read by that user, has it."""
    return hmac.new(secret, f"policywatch-mark|{user}".encode(), hashlib.sha256).hexdigest()[:32]


def valid_form_token(secret: bytes, user: str, token: str) -> bool:
    return hmac.compare_digest(form_token(secret, user), token or "")
