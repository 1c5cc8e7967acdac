"""Query parameters shared by pages, API, exports and feeds: change filters and pagination."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException

from storage.queries import ChangeFilter

EVENT_KINDS = ("new", "changed", "removed", "restored", "republished")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200

_TRUE = {"1", "true", "yes", "y", "relevant"}
_FALSE = {"0", "false", "no", "n", "irrelevant"}


def bad_request(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


def parse_when(value: str | None, name: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO-8601 date or date-time (UTC when no zone). A bare date as an upper bound means the
    whole day: `until=2026-11-23` includes events of that day."""
    if value is None or not value.strip():
        return None
    raw = value.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_request(f"{name}: not an ISO-8601 date or date-time: {raw!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end_of_day and len(raw) == 10:
        parsed += timedelta(days=1)
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
) -> ChangeFilter:
    if kind and kind not in EVENT_KINDS:
        raise bad_request(f"kind: one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    return ChangeFilter(
        since=parse_when(since, "since"),
        until=parse_when(until, "until", end_of_day=True),
        source=source or None,
        kind=kind or None,
        relevant=parse_relevant(relevant),
    )


@dataclass(frozen=True)
class Page:
    """1-based page number and size; queries fetch `size + 1` rows to know whether more follow."""

    number: int = 1
    size: int = DEFAULT_PER_PAGE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

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
