"""How a fetch fails: `_Failure`, and reading what requests, urllib3 and servers say about one.

Every layer of a fetch (the guard, the request, the body, the content checks) ends it the same
way, by raising `_Failure(kind, message)`; `Fetcher.fetch_page` turns that into the result's
`error_kind`/`error` and never lets it out, and `retryable` tells the retry loop whether another
attempt may help. The library errors under a failure are wrapped several deep (requests around
urllib3 around the socket's OSError), so `_caused_by` digs for the cause that decides the kind
and `_describe` keeps the short reason a person reads. A server's Retry-After (seconds or an
HTTP date) is read by `_parse_retry_after`.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime


class _Failure(Exception):
    """A fetch error: ends the fetch with `kind` and `message`."""

    def __init__(
        self, kind: str, message: str, *, retryable: bool = False, bytes_read: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.bytes_read = bytes_read


def _caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of type `kind` in `exc`'s causes, contexts and urllib3 reasons."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        stack.extend(item for item in linked if isinstance(item, BaseException))
    return None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: BaseException) -> str:
    text = str(exc)
    m = re.search(r"\] ([^'\")]+)", text)  # "[Errno 111] Connection refused" inside urllib3's wrapping
    return m.group(1).strip() if m else (text[:200] or type(exc).__name__)
