"""Query parameters shared by pages, API, exports and feeds: change filters and pagination."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException

from alerts.marks import MARK_FILTERS  # the filter values: a mark, or "unreviewed"
from storage.queries import ChangeFilter
from storage.vocabulary import EventKind

EVENT_KINDS = tuple(EventKind)
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
# Ids are 64-bit signed integers in both databases (SQLite's INTEGER, PostgreSQL's BIGINT): a
# larger number names nothing, and binding it fails (SQLite: OverflowError; PostgreSQL: out of range).
MAX_ID = 2**63 - 1
# Rows skipped by the deepest page: any page beyond the last row is simply empty.
MAX_OFFSET = 2**62
# Bounds of the dates a filter can name once in UTC: datetime's range (years 1 to 9999).
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
_SIGNED_YEAR = re.compile(r"([+-]?)(\d{4,})-")

_TRUE = {"1", "true", "yes", "y", "relevant"}
_FALSE = {"0", "false", "no", "n", "irrelevant"}


def bad_request(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


def not_found(what: str, value: object) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no {what} {value}")


def checked_id(value: int, what: str) -> int:
    """An id as the store can hold it; anything else (0, negative, beyond 64 bits) names nothing."""
    if not 1 <= value <= MAX_ID:
        raise not_found(what, value)
    return value


def document_ref(ref: str) -> str:
    """A document reference (`/api/history?ref=`) the store can look up: an id in range, written in
    any decimal digits (full-width １２ is 12), or a URL; otherwise 404."""
    ref = ref.strip()
    if "\x00" in ref:
        raise not_found("document", repr(ref))
    if ref.isdigit():
        try:
            number = int(ref)  # decimal digits of any script; superscripts like ² are not
        except ValueError:
            raise not_found("document", repr(ref)) from None
        return str(checked_id(number, "document"))
    return ref


def no_nul(value: str | None, name: str) -> str | None:
    """Text parameters compared in the database: PostgreSQL text cannot hold NUL."""
    if value is not None and "\x00" in value:
        raise bad_request(f"{name}: contains a NUL character")
    return value


def _year_checked(raw: str, name: str) -> str:
    """ISO-8601's expanded years (+275760-09-13, 10000-01-01, 0000-…, -0001-…) are outside the
    years 1-9999 dates can have here: say so instead of "not a date"."""
    match = _SIGNED_YEAR.match(raw)
    if match is None:
        return raw
    sign, digits = match.groups()
    year = -int(digits) if sign == "-" else int(digits)
    if not 1 <= year <= 9999:
        raise bad_request(
            f"{name}: year {year} is out of range: dates go from 0001-01-01 to 9999-12-31 (got {raw!r})"
        )
    return raw[1:] if sign == "+" else raw


def parse_when(value: str | None, name: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO-8601 date or date-time (UTC when no zone), in UTC. A bare date as an upper bound means
    the whole day: `until=2026-11-23` includes events of that day. A date that is valid but whose
    UTC time (or the day after it) falls outside years 1-9999 becomes the earliest or latest instant
    there is: `since=9999-12-31T23:59:59-05:00` matches nothing, `until=9999-12-31` everything."""
    if value is None or not value.strip():
        return None
    raw = _year_checked(value.strip(), name)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_request(f"{name}: not an ISO-8601 date or date-time: {raw!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
        if end_of_day and len(raw) == 10:
            parsed += timedelta(days=1)
    except OverflowError:
        return LATEST if parsed.year >= 9999 else EARLIEST
    return parsed


def parse_relevant(value: str | None) -> bool | None:
    if value is None or not value.strip() or value.strip().lower() in {"any", "all"}:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise bad_request(f"relevant: expected yes or no, got {value!r}")


def change_filter(
    *,
    source: str | None,
    kind: str | None,
    relevant: str | None,
    since: str | None,
    until: str | None,
    mark: str | None = None,
) -> ChangeFilter:
    if kind and kind not in EVENT_KINDS:
        raise bad_request(f"kind: one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    if mark and mark not in MARK_FILTERS:
        raise bad_request(f"mark: one of {', '.join(MARK_FILTERS)}, got {mark!r}")
    return ChangeFilter(
        since=parse_when(since, "since"),
        until=parse_when(until, "until", end_of_day=True),
        source=no_nul(source, "source") or None,
        kind=kind or None,
        relevant=parse_relevant(relevant),
        mark=mark or None,
    )


@dataclass(frozen=True)
class Page:
    """1-based page number and size; queries fetch `size + 1` rows to know whether more follow."""

    number: int = 1
    size: int = DEFAULT_PER_PAGE

    @property
    def offset(self) -> int:
        # A page beyond 64-bit offsets is as empty as any page past the last row.
        return min((self.number - 1) * self.size, MAX_OFFSET)

    @property
    def fetch(self) -> int:
        return self.size + 1

    def cut(self, rows: list[Any]) -> tuple[list[Any], bool]:
        """The rows to show and whether there is a next page."""
        return rows[: self.size], len(rows) > self.size

    def at(self, number: int) -> Page:
        return replace(self, number=number)


def page_of(page: int | None, per_page: int | None) -> Page:
    number = page or 1
    size = per_page or DEFAULT_PER_PAGE
    if number < 1:
        raise bad_request("page: must be 1 or more")
    if not 1 <= size <= MAX_PER_PAGE:
        raise bad_request(f"per_page: between 1 and {MAX_PER_PAGE}")
    return Page(number, size)


def kept(raw: dict[str, str | None]) -> dict[str, str]:
    """The non-empty parameters as given, for links that keep the current filters."""
    return {k: v for k, v in raw.items() if v}
