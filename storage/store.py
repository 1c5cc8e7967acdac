"""The version stage: record what a fetch saw, inside the caller's unit of work.

Every function takes the session of one transaction (one document), so a crash mid-cycle leaves
either the whole observation of a document or none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Integer, String, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from storage.models import (
    ChangeEvent,
    Document,
    DocumentUrl,
    DocumentVersion,
    FetchAttempt,
    RawPage,
    Source,
    utcnow,
)
from storage.raw import PackedPage, pack_page, unpack_page


class FetchRecord(Protocol):
    """What the version stage needs from a fetch (crawlers.FetchResult satisfies it)."""

    url: str
    final_url: str
    status: int | None
    error: str | None
    error_kind: str | None
    etag: str | None
    last_modified: str | None
    bytes: int
    elapsed_s: float
    redirects: list[str]
    fetched_at: datetime


class Content(Protocol):
    """What the version stage needs from an extracted document (extraction.ExtractedDocument satisfies it).
    Read-only members: a frozen dataclass satisfies them."""

    @property
    def title(self) -> str: ...

    @property
    def paragraphs(self) -> tuple[str, ...]: ...

    @property
    def doc_number(self) -> str | None: ...

    @property
    def issuer(self) -> str | None: ...

    @property
    def published_at(self) -> str | None: ...

    @property
    def method(self) -> str: ...

    @property
    def normalised_paragraphs(self) -> list[str]: ...

    @property
    def content_hash(self) -> str: ...


@dataclass(frozen=True)
class KnownDocument:
    id: int
    url: str
    status: str
    etag: str | None
    last_modified: str | None
    page_fingerprint: str | None = None
    # The check history (Document.checks ...), for policywatch.schedule.
    first_seen_at: datetime | None = None
    last_checked_at: datetime | None = None
    checks: int = 1
    changes: int = 0
    not_modified_checks: int = 0
    removed_checks: int = 0
    published_at: str | None = None  # the current version's publication date (YYYY-MM-DD), if any


@dataclass(frozen=True)
class ContentOutcome:
    """What recording a successfully extracted page did."""

    kind: str  # "first" (no version before) | "unchanged" | "changed"
    document: Document
    old_version: DocumentVersion | None
    new_version: DocumentVersion
    was_removed: bool  # the document had been confirmed gone and is back
    moved_from: str | None  # the URL the document had before this fetch followed a redirect


def ensure_source(session: Session, source_id: str, name: str) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        source = Source(id=source_id, name=name)
        session.add(source)
        session.flush()
    elif source.name != name:
        source.name = name
    return source


def known_documents(session: Session, source_id: str) -> dict[str, KnownDocument]:
    """Every URL (current or former) of the source's documents -> the document."""
    rows = session.execute(
        select(
            Document.id,
            Document.url,
            Document.status,
            Document.etag,
            Document.last_modified,
            Document.page_fingerprint,
            Document.first_seen_at,
            Document.last_checked_at,
            Document.checks,
            Document.changes,
            Document.not_modified_checks,
            Document.removed_checks,
            DocumentVersion.published_at,
        )
        .outerjoin(DocumentVersion, DocumentVersion.id == Document.current_version_id)
        .where(Document.source_id == source_id)
    ).all()
    by_id = {row.id: KnownDocument(**row._asdict()) for row in rows}
    result = {doc.url: doc for doc in by_id.values()}
    if by_id:
        aliases = session.execute(
            select(DocumentUrl.url, DocumentUrl.document_id)
            .join(Document)
            .where(Document.source_id == source_id)
        ).all()
        for alias in aliases:
            result.setdefault(alias.url, by_id[alias.document_id])
    return result


def document_for_url(session: Session, url: str) -> Document | None:
    doc = session.scalar(select(Document).where(Document.url == url))
    if doc is not None:
        return doc
    alias = session.get(DocumentUrl, url)
    return session.get(Document, alias.document_id) if alias else None


def record_attempt(
    session: Session,
    source_id: str,
    document_id: int | None,
    fetch: FetchRecord,
    outcome: str,
    *,
    error: str | None = None,
    error_kind: str | None = None,
) -> None:
    # A Core INSERT on the session's connection (same transaction): one row per page of every
    # cycle, where the ORM's unit of work costs more than the insert itself.
    session.connection().execute(
        insert(FetchAttempt).values(
            **_attempt_row(source_id, document_id, fetch, outcome, error=error, error_kind=error_kind)
        )
    )


def _attempt_row(
    source_id: str,
    document_id: int | None,
    fetch: FetchRecord,
    outcome: str,
    *,
    error: str | None = None,
    error_kind: str | None = None,
) -> dict[str, object]:
    return {
        "source_id": source_id,
        "document_id": document_id,
        "url": fetch.url,
        "fetched_at": fetch.fetched_at,
        "status": fetch.status,
        "outcome": outcome,
        "error_kind": error_kind if error_kind is not None else fetch.error_kind,
        "error": error if error is not None else fetch.error,
        "etag": fetch.etag,
        "last_modified": fetch.last_modified,
        "bytes": fetch.bytes or None,
        "elapsed_ms": round(fetch.elapsed_s * 1000),
        "redirects": fetch.redirects or None,
    }


@dataclass(frozen=True)
class SeenAgain:
    """A known document's current version seen again: a 304, or a page that is the same but for chrome."""

    source_id: str
    document_id: int
    fetch: FetchRecord
    outcome: str  # "not_modified" | "unchanged"


def record_seen_again(session: Session, seen: list[SeenAgain]) -> None:
    """Record many pages seen again at once: two executemany statements, whatever their number.

    Most pages of a warm cycle are this, so they are written in batches (the caller's transaction)
    instead of one transaction each: what a crash can lose is when they were last checked, never a
    version, an event or an alert.
    """
    if not seen:
        return
    connection = session.connection()
    connection.execute(
        update(Document)
        .where(Document.id == bindparam("doc_id"))
        .values(
            last_checked_at=bindparam("checked_at"),
            version_seen_at=bindparam("checked_at"),
            checks=Document.checks + 1,
            not_modified_checks=Document.not_modified_checks + bindparam("not_modified", type_=Integer()),
            etag=func.coalesce(bindparam("new_etag", type_=String()), Document.etag),
            last_modified=func.coalesce(
                bindparam("new_last_modified", type_=String()), Document.last_modified
            ),
        ),
        [
            {
                "doc_id": s.document_id,
                "checked_at": s.fetch.fetched_at,
                "new_etag": s.fetch.etag,
                "new_last_modified": s.fetch.last_modified,
                "not_modified": int(s.outcome == "not_modified"),
            }
            for s in seen
        ],
    )
    connection.execute(
        insert(FetchAttempt), [_attempt_row(s.source_id, s.document_id, s.fetch, s.outcome) for s in seen]
    )


def mark_removed(session: Session, document_id: int, fetch: FetchRecord) -> Document | None:
    """Confirmed gone: returns the document when this is news (it was active), else None."""
    doc = session.get(Document, document_id)
    if doc is None:
        return None
    doc.checks += 1
    doc.last_checked_at = fetch.fetched_at
    if doc.status == "removed":
        doc.removed_checks += 1  # still gone: the next re-check waits longer (policywatch.schedule)
        return None
    doc.status = "removed"
    doc.removed_checks = 0
    doc.etag = doc.last_modified = None
    return doc


def store_raw(session: Session, page: str | PackedPage, encoding: str | None) -> str:
    """Keep the page's HTML compressed, once per distinct body; returns its key."""
    packed = page if isinstance(page, PackedPage) else pack_page(page)
    # An existence test, not session.get: that would load the stored body (tens of KB) to drop it.
    if session.scalar(select(RawPage.sha256).where(RawPage.sha256 == packed.sha256)) is None:
        session.add(RawPage(sha256=packed.sha256, body=packed.body, size=packed.size, encoding=encoding))
        session.flush()  # no ORM relationship orders this insert before the version's
    return packed.sha256


def load_raw(session: Session, key: str) -> str | None:
    raw = session.get(RawPage, key)
    return unpack_page(raw.body) if raw is not None else None


def record_content(
    session: Session,
    source_id: str,
    document_id: int | None,
    fetch: FetchRecord,
    content: Content,
    html: str | PackedPage,
    encoding: str | None,
    same_document: Callable[[Session, str, Content], Document | None] | None = None,
    page_fingerprint: str | None = None,
    extractor_revision: str | None = None,
    attachment_of: int | None = None,
) -> ContentOutcome:
    """Record an extracted page: a new document, a new version, or the current version seen again.

    `same_document` finds the known document a page at an unknown URL is (a move: the caller's
    notion of identity, e.g. the same 发文字号 and title); the storage layer has none of its own.
    `page_fingerprint`: the page's (extraction.equivalence), kept for the next fetch's fast path.
    `extractor_revision`: the extractor that read `content` (stored with a new version; the caller's
    extraction.content.EXTRACTOR_REVISION for a page: storage knows no extractor).
    `attachment_of`: a new document is a file linked from the body of this page (document id).
    """
    now = fetch.fetched_at or utcnow()
    final_url = fetch.final_url or fetch.url
    doc = session.get(Document, document_id) if document_id is not None else None
    moved_from = None
    if doc is None:
        # Unknown URL; it may still be a known document reached through an alias.
        doc = document_for_url(session, final_url) or document_for_url(session, fetch.url)
    if doc is None and same_document is not None:
        doc = same_document(session, source_id, content)  # a move: the document goes there below
    if doc is None:
        doc = Document(source_id=source_id, url=final_url, status="active", first_seen_at=now)
        if attachment_of is not None:  # unset otherwise: a store before 0012 has no such column
            doc.attachment_of = attachment_of
        session.add(doc)
        session.flush()
        for url in {fetch.url, final_url}:
            session.add(DocumentUrl(url=url, document_id=doc.id, first_seen_at=now))
    elif final_url != doc.url:
        moved_from = _move(session, doc, final_url, now)

    was_removed = doc.status == "removed"
    if doc.current_version_id is not None:
        doc.checks += 1  # a new document's first fetch is its first check (the column's default)
    doc.removed_checks = 0
    doc.status = "active"
    doc.last_checked_at = now
    doc.etag, doc.last_modified = fetch.etag, fetch.last_modified
    doc.title = content.title
    doc.doc_number = content.doc_number or doc.doc_number
    doc.page_fingerprint = page_fingerprint

    old = session.get(DocumentVersion, doc.current_version_id) if doc.current_version_id else None
    content_hash = content.content_hash
    if old is not None and old.content_hash == content_hash:
        doc.version_seen_at = now  # not the version row: see Document.version_seen_at
        return ContentOutcome("unchanged", doc, old, old, was_removed, moved_from)
    if old is not None:
        old.last_seen_at = old.seen_until  # superseded: its row takes its last sighting for good
        doc.changes += 1

    normalised = content.normalised_paragraphs
    version = DocumentVersion(
        document_id=doc.id,
        content_hash=content_hash,
        title=content.title,
        text="\n".join(content.paragraphs),
        normalized_text="\n".join(normalised),
        doc_number=content.doc_number,
        issuer=content.issuer,
        published_at=content.published_at,
        chars=sum(len(p) for p in normalised),
        url=final_url,
        extraction_method=content.method,
        raw_sha256=store_raw(session, html, encoding),
        first_seen_at=now,
        last_seen_at=now,
        extractor_revision=extractor_revision,
    )
    session.add(version)
    session.flush()
    doc.current_version_id = version.id
    doc.version_seen_at = now
    return ContentOutcome("first" if old is None else "changed", doc, old, version, was_removed, moved_from)


def _move(session: Session, doc: Document, new_url: str, now: datetime) -> str | None:
    """The document now answers at `new_url` (a redirect): keep its id and history, remember both URLs."""
    holder = session.scalar(select(Document).where(Document.url == new_url))
    if holder is not None and holder.id != doc.id:
        # Another document already owns that URL (it was discovered there first): leave both as they are.
        return None
    old_url = doc.url
    doc.url = new_url
    if session.get(DocumentUrl, new_url) is None:
        session.add(DocumentUrl(url=new_url, document_id=doc.id, first_seen_at=now))
    return old_url


def document_with_text(session: Session, content_hash: str, exclude_document_id: int) -> Document | None:
    """The earliest other document whose some version had exactly this normalised content."""
    return session.scalar(
        select(Document)
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .where(DocumentVersion.content_hash == content_hash, Document.id != exclude_document_id)
        .order_by(DocumentVersion.id)
        .limit(1)
    )


def add_event(session: Session, event: ChangeEvent) -> ChangeEvent:
    session.add(event)
    session.flush()
    return event
