"""The words the store keeps in its string columns, each written once: event kinds, marks, states,
statuses, reference kinds, listing kinds, diff operations (with labels and colours where people see
them).

Each set is a `StrEnum`: a member *is* its string (`EventKind.NEW == "new"`, JSON and SQL see
"new"), so code can compare, store and serialise members or plain strings alike. The columns that
hold them carry CHECK constraints built from these sets (storage.models, migration 0021): a value
outside its set is refused by the database, not discovered by a reader later.

At the bottom of the house: this module imports nothing of the project, so every layer may use it
(the stages too: the import-linter contracts in pyproject.toml let them import this module alone of
storage).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CHECKED_COLUMNS",
    "CURRENT_MARKS",
    "SUBSCRIBABLE_EVENTS",
    "AttemptOutcome",
    "DiffOp",
    "DocumentStatus",
    "EventKind",
    "FetchErrorKind",
    "HealthState",
    "ListingKind",
    "Mark",
    "MarkFilter",
    "NoticeKind",
    "NoticeStatus",
    "OutboxReason",
    "OutboxStatus",
    "ReferenceKind",
    "ResolvedBy",
    "SentKind",
    "SubscriptionMode",
    "check",
]


class _Shown(StrEnum):
    """A set whose words people see: each member has a Chinese and an English label and a colour
    (one palette, GitHub's, wherever they appear: mail, web pages, charts), given in _SHOWN."""

    @property
    def label_zh(self) -> str:
        return _SHOWN[self][0]

    @property
    def label(self) -> str:
        return _SHOWN[self][1]

    @property
    def colour(self) -> str:
        return _SHOWN[self][2]


class EventKind(_Shown):
    """What a change event says happened to a document (CONTRACT.md)."""

    NEW = "new"
    CHANGED = "changed"
    REMOVED = "removed"
    RESTORED = "restored"
    REPUBLISHED = "republished"


# What a subscriber may follow: the event kinds, and `important` (an analyst marked the change).
SUBSCRIBABLE_EVENTS = (*EventKind, "important")


class Mark(_Shown):
    """An analyst's triage mark on a change; `cleared` takes the mark off (audit rows only)."""

    IMPORTANT = "important"
    REVIEWED = "reviewed"
    NOT_SIGNIFICANT = "not_significant"
    CLEARED = "cleared"


_SHOWN: dict[_Shown, tuple[str, str, str]] = {
    EventKind.NEW: ("新文件", "new document", "#1a7f37"),
    EventKind.CHANGED: ("内容变更", "changed", "#bf8700"),
    EventKind.REMOVED: ("已删除", "removed", "#cf222e"),
    EventKind.RESTORED: ("已恢复", "restored", "#0969da"),
    EventKind.REPUBLISHED: ("转载", "republished", "#8250df"),
    Mark.IMPORTANT: ("重要", "important", "#cf222e"),
    Mark.REVIEWED: ("已审阅", "reviewed", "#1a7f37"),
    Mark.NOT_SIGNIFICANT: ("不重要", "not significant", "#8c959f"),
    Mark.CLEARED: ("已清除", "cleared", "#57606a"),
}

# The marks a change can carry now (ChangeEvent.mark; NULL when none or cleared).
CURRENT_MARKS = (Mark.IMPORTANT, Mark.REVIEWED, Mark.NOT_SIGNIFICANT)


class MarkFilter(StrEnum):
    """The change lists' filter values: a current mark, or none yet."""

    IMPORTANT = "important"
    REVIEWED = "reviewed"
    NOT_SIGNIFICANT = "not_significant"
    UNREVIEWED = "unreviewed"


class DocumentStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"


class HealthState(StrEnum):
    """A source's health (policywatch.health): down when nothing answered at all."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class AttemptOutcome(StrEnum):
    """What one fetch attempt came to (fetch_attempts.outcome): a document's event or none, a
    listing page read, a link that was never a document, a move, a check left for later."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    NOT_MODIFIED = "not_modified"
    REMOVED = "removed"
    RESTORED = "restored"
    REPUBLISHED = "republished"
    BASELINE = "baseline"
    ERROR = "error"
    LISTING = "listing"
    DEAD_LINK = "dead_link"
    MOVED = "moved"
    DEFERRED = "deferred"


class ReferenceKind(StrEnum):
    """How a version refers to another document (policywatch.citations)."""

    CITES = "cites"
    IMPLEMENTS = "implements"
    AMENDS = "amends"
    REPEALS = "repeals"


class ResolvedBy(StrEnum):
    NUMBER = "number"
    TITLE = "title"
    FUZZY_TITLE = "fuzzy-title"


class NoticeKind(StrEnum):
    """An operator notice (policywatch.health, policywatch.overdue)."""

    DEGRADED = "degraded"
    RECOVERED = "recovered"
    OVERDUE = "overdue"


class NoticeStatus(StrEnum):
    """An operator notice: pending until the SMTP server accepted it."""

    PENDING = "pending"
    SENT = "sent"


class OutboxStatus(StrEnum):
    """An alert in the outbox (alerts.outbox): claimed with a lease while `sending`; `failed` after
    its last try; `cancelled` when its subscriber left."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SubscriptionMode(StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"


class OutboxReason(StrEnum):
    """Why an alert was queued: the event itself, or an analyst marking it important."""

    EVENT = "event"
    IMPORTANT = "important"


class SentKind(StrEnum):
    """What a sent mail was (the web app's Mail page)."""

    ALERT = "alert"
    DIGEST = "digest"
    NOTICE = "notice"


class ListingKind(StrEnum):
    """How a source's listing page is read (crawlers.listings)."""

    HTML = "html"
    JSON = "json"
    RSS = "rss"  # RSS or Atom
    HANWEB = "hanweb"


class FetchErrorKind(StrEnum):
    """Why a check failed (fetch_attempts.error_kind): the fetcher's kinds (crawlers' _Failure),
    then the pipeline's (an HTTP error status, unreadable text, a bug, a listing, a page gone)."""

    BLOCKED = "blocked"
    CHALLENGE = "challenge"
    CONNECTION = "connection"
    CONTENT_ENCODING = "content_encoding"
    EMPTY = "empty"
    ENCODING = "encoding"
    HTTP = "http"
    NOT_HTML = "not_html"
    REDIRECT = "redirect"
    ROBOTS = "robots"
    SCHEME = "scheme"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    TRUNCATED = "truncated"
    EXTRACT = "extract"
    INTERNAL = "internal"
    LISTING = "listing"
    GONE = "gone"


class DiffOp(StrEnum):
    """A diff operation (policydiff): the text equal, inserted, deleted, replaced or moved."""

    EQUAL = "equal"
    INSERT = "insert"
    DELETE = "delete"
    REPLACE = "replace"
    MOVE = "move"


# (table, column, allowed values, NULL allowed): the columns the database keeps within their set
# (migration 0021 holds a copy, as a migration must; tests/test_storage.py checks the two agree).
CHECKED_COLUMNS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("sources", "health_state", tuple(HealthState), False),
    ("documents", "status", tuple(DocumentStatus), False),
    ("fetch_attempts", "outcome", tuple(AttemptOutcome), False),
    ("change_events", "kind", tuple(EventKind), False),
    ("change_events", "mark", CURRENT_MARKS, True),
    ("change_marks", "mark", tuple(Mark), False),
    ("document_references", "kind", tuple(ReferenceKind), False),
    ("document_references", "resolved_by", tuple(ResolvedBy), True),
    ("operator_notices", "kind", tuple(NoticeKind), False),
    ("operator_notices", "status", tuple(NoticeStatus), False),
    ("alert_outbox", "mode", tuple(SubscriptionMode), False),
    ("alert_outbox", "reason", tuple(OutboxReason), False),
    ("alert_outbox", "status", tuple(OutboxStatus), False),
    ("sent_mail", "kind", tuple(SentKind), False),
)


def check(column: str, values: tuple[str, ...] | type[StrEnum], *, nullable: bool = False) -> str:
    """The SQL of a CHECK constraint keeping `column` within `values` (NULL too when `nullable`).

    >>> check("kind", NoticeKind)
    "kind IN ('degraded', 'recovered', 'overdue')"
    >>> check("mark", CURRENT_MARKS, nullable=True)
    "mark IS NULL OR mark IN ('important', 'reviewed', 'not_significant')"
    """
    allowed = ", ".join(f"'{v}'" for v in values)
    clause = f"{column} IN ({allowed})"
    return f"{column} IS NULL OR {clause}" if nullable else clause
