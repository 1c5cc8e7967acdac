"""Read-side queries over the version store, shaped as CONTRACT.md's JSON.

Shared by the CLI (`changes`, `history`, `search`) and the analyst web app. Lists are paginated with
limit/offset; callers that need "is there a next page" ask for one row more than they show.

(About 480 lines: every read the CLI and the web app share, kept together so that the JSON shapes of
CONTRACT.md are defined in one place; the writes are storage.store.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, column, func, select, table, text
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from storage.models import (
    ChangeEvent,
    Document,
    DocumentUrl,
    DocumentVersion,
    FetchAttempt,
    Source,
    seen_until,
)
from storage.search_index import index_pending_versions
from storage.store import document_for_url

SNIPPET_CONTEXT = 40
# FTS5's trigram tokenizer matches substrings of 3 characters or more; shorter needles use LIKE.
TRIGRAM_MIN_CHARS = 3
FTS_TABLE = "document_search"


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def event_json(event: ChangeEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "source": event.source_id,
        "url": event.url,
        "document_id": event.document_id,
        "title": event.title,
        "old_version_id": event.old_version_id,
        "new_version_id": event.new_version_id,
        "detected_at": iso(event.detected_at),
        "relevant": bool(event.relevant),
        "significance": float(event.significance),
        "summary": event.summary,
        "relevance_terms": list(event.relevance_terms or []),
        "original_document_id": event.original_document_id,
        # The page whose body links this file (an attachment), or null (CONTRACT.md).
        "attachment_of": event.attachment_of,
        # The analysts' current mark (important | reviewed | not_significant), or null.
        "mark": event.mark,
    }


@dataclass(frozen=True)
class ChangeFilter:
    """Which change events to list; every field is optional (None = no condition)."""

    since: datetime | None = None  # detected_at >= since
    until: datetime | None = None  # detected_at < until
    source: str | None = None
    kind: str | None = None
    relevant: bool | None = None
    document_id: int | None = None
    mark: str | None = None  # a mark, or "unreviewed" (no mark)

    def conditions(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(ChangeEvent.detected_at >= self.since)
        if self.until is not None:
            out.append(ChangeEvent.detected_at < self.until)
        if self.source:
            out.append(ChangeEvent.source_id == self.source)
        if self.kind:
            out.append(ChangeEvent.kind == self.kind)
        if self.relevant is not None:
            out.append(ChangeEvent.relevant == self.relevant)
        if self.document_id is not None:
            out.append(ChangeEvent.document_id == self.document_id)
        if self.mark == "unreviewed":
            out.append(ChangeEvent.mark.is_(None))
        elif self.mark:
            out.append(ChangeEvent.mark == self.mark)
        return out


def list_changes(
    session: Session,
    *,
    since: datetime | None = None,
    source: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
    until: datetime | None = None,
    relevant: bool | None = None,
    document_id: int | None = None,
    mark: str | None = None,
) -> list[dict[str, Any]]:
    """Change events, newest first (CONTRACT.md `changes --json` rows)."""
    where = ChangeFilter(since, until, source, kind, relevant, document_id, mark)
    return filtered_changes(session, where, limit=limit, offset=offset)


def filtered_changes(
    session: Session, where: ChangeFilter, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    query = (
        select(ChangeEvent)
        .where(*where.conditions())
        .order_by(ChangeEvent.detected_at.desc(), ChangeEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [event_json(e) for e in session.scalars(query)]


def find_document(
    session: Session, ref: str, canonical: Callable[[str], str] | None = None
) -> Document | None:
    """A document by id, by URL (current or former), or by that URL made `canonical` (the fetch
    stage's crawlers.canonical_url: the store knows no URL rules of its own)."""
    if ref.isdigit():
        return session.get(Document, int(ref))
    doc = document_for_url(session, ref)
    if doc is None and canonical is not None:
        doc = document_for_url(session, canonical(ref))
    return doc


def version_json(version: DocumentVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "first_seen_at": iso(version.first_seen_at),
        "last_seen_at": iso(version.seen_until),
        "content_hash": version.content_hash,
        "title": version.title,
        "doc_number": version.doc_number,
        "published_at": version.published_at,
        "chars": version.chars,
        "issuer": version.issuer,
        "url": version.url,
        "extractor_revision": version.extractor_revision,
    }


# Everything of a version but its text: history lists must not load megabytes of policy text.
_VERSION_META = (
    DocumentVersion.id,
    DocumentVersion.first_seen_at,
    DocumentVersion.last_seen_at,
    DocumentVersion.content_hash,
    DocumentVersion.title,
    DocumentVersion.doc_number,
    DocumentVersion.published_at,
    DocumentVersion.chars,
    DocumentVersion.issuer,
    DocumentVersion.url,
    DocumentVersion.extractor_revision,
)


def _version_rows(session: Session, document_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(*_VERSION_META).where(DocumentVersion.document_id == document_id).order_by(DocumentVersion.id)
    ).all()
    document = session.get(Document, document_id)
    return [
        {
            "id": r.id,
            "first_seen_at": iso(r.first_seen_at),
            "last_seen_at": iso(seen_until(r.id, r.last_seen_at, document)),
            "content_hash": r.content_hash,
            "title": r.title,
            "doc_number": r.doc_number,
            "published_at": r.published_at,
            "chars": r.chars,
            "issuer": r.issuer,
            "url": r.url,
            "extractor_revision": r.extractor_revision,
        }
        for r in rows
    ]


def document_history(
    session: Session, ref: str, canonical: Callable[[str], str] | None = None
) -> dict[str, Any] | None:
    """CONTRACT.md `history --json`: the document and its versions, oldest first."""
    doc = find_document(session, ref, canonical)
    if doc is None:
        return None
    return {
        "document_id": doc.id,
        "url": doc.url,
        "title": doc.title,
        "source": doc.source_id,
        "status": doc.status,
        "doc_number": doc.doc_number,
        "republished_of": doc.republished_of_id,
        "versions": _version_rows(session, doc.id),
    }


def document_brief(doc: Document) -> dict[str, Any]:
    return {"document_id": doc.id, "url": doc.url, "title": doc.title, "source": doc.source_id}


def document_detail(session: Session, document_id: int) -> dict[str, Any] | None:
    """Everything the document page shows: history plus metadata, URLs, reposts and events."""
    doc = session.get(Document, document_id)
    if doc is None:
        return None
    versions = _version_rows(session, doc.id)
    current = next((v for v in versions if v["id"] == doc.current_version_id), None)
    source = session.get(Source, doc.source_id)
    former_urls = session.scalars(
        select(DocumentUrl.url)
        .where(DocumentUrl.document_id == doc.id, DocumentUrl.url != doc.url)
        .order_by(DocumentUrl.first_seen_at, DocumentUrl.url)
    ).all()
    reposts = session.scalars(
        select(Document).where(Document.republished_of_id == doc.id).order_by(Document.id).limit(200)
    ).all()
    original = session.get(Document, doc.republished_of_id) if doc.republished_of_id else None
    events = session.scalars(
        select(ChangeEvent)
        .where(ChangeEvent.document_id == doc.id)
        .order_by(ChangeEvent.detected_at, ChangeEvent.id)
        .limit(1000)
    ).all()
    return {
        "document_id": doc.id,
        "url": doc.url,
        "title": doc.title,
        "source": doc.source_id,
        "source_name": source.name if source else doc.source_id,
        "status": doc.status,
        "doc_number": doc.doc_number,
        "issuer": current["issuer"] if current else None,
        "published_at": current["published_at"] if current else None,
        "first_seen_at": iso(doc.first_seen_at),
        "last_checked_at": iso(doc.last_checked_at),
        "current_version_id": doc.current_version_id,
        "former_urls": list(former_urls),
        "republished_of": document_brief(original) if original else None,
        "reposts": [document_brief(d) for d in reposts],
        "versions": versions,
        "events": [event_json(e) for e in events],
    }


def get_version(session: Session, version_id: int) -> DocumentVersion | None:
    return session.get(DocumentVersion, version_id)


# --- search -------------------------------------------------------------------------------------


# Derived objects of migration 0003_search, not in the models (the FTS5 table and its shadow tables
# on SQLite, the pg_trgm and query indexes): Alembic's autogenerate must not propose dropping them.
SEARCH_INDEXES = frozenset(
    {
        "ix_documents_republished_of_id",
        "ix_change_events_kind_detected",
        "ix_change_events_relevant_detected",
        "ix_fetch_attempts_source_fetched",
        "ix_document_versions_text_trgm",
        "ix_document_versions_title_trgm",
        "ix_document_versions_issuer_id",
    }
)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic `include_object` hook: False for the search objects found in the database."""
    if not reflected or compare_to is not None or name is None:
        return True
    if type_ == "table":
        return not name.startswith(FTS_TABLE)
    return not (type_ == "index" and name in SEARCH_INDEXES)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_phrase(needle: str) -> str:
    """An FTS5 query matching `needle` as one phrase (quotes doubled, nothing else is syntax)."""
    return '"' + needle.replace('"', '""') + '"'


def _has_fts(session: Session) -> bool:
    """The FTS5 table of migration 0003 exists (a store not yet upgraded falls back to LIKE)."""
    found = session.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": FTS_TABLE}
    ).first()
    return found is not None


def _current_versions() -> Any:
    """Documents joined to their current version (through the primary key of documents)."""
    return select(Document, DocumentVersion).join(
        Document,
        (Document.id == DocumentVersion.document_id) & (Document.current_version_id == DocumentVersion.id),
    )


def search_rows(
    session: Session, needle: str, limit: int, offset: int
) -> list[tuple[Document, DocumentVersion]]:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite" and len(needle) >= TRIGRAM_MIN_CHARS and _has_fts(session):
        # Versions recorded since their batch ended are indexed first (storage.search_index).
        index_pending_versions(session.get_bind().engine)
        # The trigram index holds every version (migration 0007): keep the current ones, page
        # through them newest first, then load.
        fts = table(FTS_TABLE, column("rowid"))
        current = select(Document.current_version_id).where(Document.current_version_id.is_not(None))
        matches = (
            select(fts.c.rowid.label("version_id"))
            # "+ 0": SQLite would otherwise run the FTS5 phrase query once per current version
            # (2-9 s for a common phrase on 10,000 documents, against 3-25 ms).
            .where(text(f"{FTS_TABLE} MATCH :phrase"), (fts.c.rowid + 0).in_(current))
            .order_by(fts.c.rowid.desc())
            .limit(limit)
            .offset(offset)
            .subquery()
        )
        query = (
            _current_versions()
            .join(matches, matches.c.version_id == DocumentVersion.id)
            .order_by(DocumentVersion.id.desc())
        )
        return [(d, v) for d, v in session.execute(query, {"phrase": _fts_phrase(needle)})]
    # PostgreSQL: LIKE uses the pg_trgm GIN indexes. SQLite, 1-2 characters: a scan, driven from
    # documents (one current version each) so that LIKE reads 1 version in 5, not every version.
    pattern = f"%{_escape_like(needle)}%"
    query = (
        select(Document, DocumentVersion)
        .select_from(Document)
        .join(DocumentVersion, DocumentVersion.id == Document.current_version_id)
        .where(
            DocumentVersion.normalized_text.like(pattern, escape="\\")
            | DocumentVersion.title.like(pattern, escape="\\")
        )
        .order_by(DocumentVersion.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(d, v) for d, v in session.execute(query)]


def find_needle(text: str, needle: str) -> int:
    """Where `needle` first occurs in `text`; ASCII letters match either case, as the index does."""
    at = text.find(needle)
    return at if at >= 0 else text.lower().find(needle.lower())


def snippet(text: str, needle: str, context: int = SNIPPET_CONTEXT) -> str:
    at = find_needle(text, needle)
    if at < 0:
        return ""
    start, end = max(0, at - context), min(len(text), at + len(needle) + context)
    body = text[start:end].replace("\n", " ")
    return ("…" if start else "") + body + ("…" if end < len(text) else "")


# --- sources and the dashboard -----------------------------------------------------------------


def list_sources(session: Session) -> list[dict[str, Any]]:
    return [{"id": s.id, "name": s.name} for s in session.scalars(select(Source).order_by(Source.id))]


def _day_of(column: Any, dialect: str) -> Any:
    """The UTC calendar day (YYYY-MM-DD) of a timestamp column, as text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite stores UTC timestamps as ISO text


def changes_per_day(session: Session, since: datetime) -> list[dict[str, Any]]:
    """How many change events each source had per UTC day since `since`."""
    dialect = session.get_bind().dialect.name
    day = _day_of(ChangeEvent.detected_at, dialect).label("day")
    rows = session.execute(
        select(ChangeEvent.source_id, day, func.count().label("n"))
        .where(ChangeEvent.detected_at >= since)
        .group_by(ChangeEvent.source_id, day)
        .order_by(day, ChangeEvent.source_id)
    ).all()
    return [{"source": r.source_id, "day": str(r.day), "count": int(r.n)} for r in rows]


def source_health(session: Session, since: datetime) -> list[dict[str, Any]]:
    """Per source: last run and success, and the share of failed fetches since `since`."""
    stats = {
        r.source_id: r
        for r in session.execute(
            select(
                FetchAttempt.source_id,
                func.count().label("attempts"),
                func.sum(case((FetchAttempt.outcome == "error", 1), else_=0)).label("errors"),
                func.max(FetchAttempt.fetched_at).label("last_attempt_at"),
            )
            .where(FetchAttempt.fetched_at >= since)
            .group_by(FetchAttempt.source_id)
        ).all()
    }
    last_errors: dict[str, FetchAttempt] = {}
    latest = (
        select(FetchAttempt.source_id, func.max(FetchAttempt.id).label("id"))
        .where(FetchAttempt.outcome == "error", FetchAttempt.fetched_at >= since)
        .group_by(FetchAttempt.source_id)
        .subquery()
    )
    attempt = aliased(FetchAttempt)
    for row in session.scalars(select(attempt).join(latest, latest.c.id == attempt.id)):
        last_errors[row.source_id] = row
    oldest_checks = dict(
        session.execute(
            select(Document.source_id, func.min(Document.last_checked_at))
            .where(Document.status == "active")
            .group_by(Document.source_id)
        ).all()
    )
    out = []
    for source in session.scalars(select(Source).order_by(Source.id)):
        stat = stats.get(source.id)
        attempts = int(stat.attempts) if stat else 0
        errors = int(stat.errors or 0) if stat else 0
        error = last_errors.get(source.id)
        out.append(
            {
                "id": source.id,
                "name": source.name,
                "baseline_at": iso(source.baseline_at),
                "last_run_at": iso(source.last_run_at),
                "last_success_at": iso(source.last_success_at),
                "attempts": attempts,
                "errors": errors,
                "error_rate": round(errors / attempts, 4) if attempts else None,
                # Re-checks: the oldest check of an active document now, and the last cycle's report
                # (due, re-checked, deferred, share within their interval, budget use per host).
                "oldest_check_at": iso(oldest_checks.get(source.id)),
                "freshness": source.freshness,
                # Whether it quietly stopped (policywatch.health): up | degraded | down.
                "state": source.health_state or "up",
                "consecutive_failures": source.consecutive_failures or 0,
                "state_reason": source.health_reason,
                "state_since": iso(source.health_since),
                "last_error": (
                    {
                        "at": iso(error.fetched_at),
                        "url": error.url,
                        "kind": error.error_kind,
                        "message": error.error,
                        "status": error.status,
                    }
                    if error
                    else None
                ),
            }
        )
    return out
