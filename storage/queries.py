"""Read-side queries over the version store, shaped as CONTRACT.md's JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ChangeEvent, Document, DocumentVersion
from storage.store import document_for_url

SNIPPET_CONTEXT = 40


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
    }


def list_changes(
    session: Session,
    *,
    since: datetime | None = None,
    source: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    query = select(ChangeEvent)
    if since is not None:
        query = query.where(ChangeEvent.detected_at >= since)
    if source:
        query = query.where(ChangeEvent.source_id == source)
    if kind:
        query = query.where(ChangeEvent.kind == kind)
    query = query.order_by(ChangeEvent.detected_at.desc(), ChangeEvent.id.desc()).limit(limit).offset(offset)
    return [event_json(e) for e in session.scalars(query)]


def find_document(session: Session, ref: str) -> Document | None:
    """A document by id, by URL (current or former), or by canonical URL."""
    if ref.isdigit():
        return session.get(Document, int(ref))
    doc = document_for_url(session, ref)
    if doc is None:
        from crawlers import canonical_url

        doc = document_for_url(session, canonical_url(ref))
    return doc


def version_json(version: DocumentVersion) -> dict[str, Any]:
    return {
        "id": version.id,
        "first_seen_at": iso(version.first_seen_at),
        "last_seen_at": iso(version.last_seen_at),
        "content_hash": version.content_hash,
        "title": version.title,
        "doc_number": version.doc_number,
        "published_at": version.published_at,
        "chars": version.chars,
        "issuer": version.issuer,
        "url": version.url,
    }


def document_history(session: Session, ref: str) -> dict[str, Any] | None:
    doc = find_document(session, ref)
    if doc is None:
        return None
    versions = session.scalars(
        select(DocumentVersion).where(DocumentVersion.document_id == doc.id).order_by(DocumentVersion.id)
    ).all()
    return {
        "document_id": doc.id,
        "url": doc.url,
        "title": doc.title,
        "source": doc.source_id,
        "status": doc.status,
        "doc_number": doc.doc_number,
        "republished_of": doc.republished_of_id,
        "versions": [version_json(v) for v in versions],
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_documents(session: Session, query: str, limit: int = 50) -> list[dict[str, Any]]:
    """Documents whose current normalised text or title contains `query` (NFKC, so widths match)."""
    from extraction import normalise_text

    needle = normalise_text(query)
    if not needle:
        return []
    pattern = f"%{_escape_like(needle)}%"
    rows = session.execute(
        select(Document, DocumentVersion)
        .join(DocumentVersion, DocumentVersion.id == Document.current_version_id)
        .where(
            DocumentVersion.normalized_text.like(pattern, escape="\\")
            | DocumentVersion.title.like(pattern, escape="\\")
        )
        .order_by(DocumentVersion.last_seen_at.desc(), Document.id)
        .limit(limit)
    ).all()
    results = []
    for doc, version in rows:
        results.append(
            {
                "document_id": doc.id,
                "url": doc.url,
                "title": version.title,
                "version_id": version.id,
                "snippet": snippet(version.normalized_text, needle) or version.title,
            }
        )
    return results


def snippet(text: str, needle: str, context: int = SNIPPET_CONTEXT) -> str:
    at = text.find(needle)
    if at < 0:
        return ""
    start, end = max(0, at - context), min(len(text), at + len(needle) + context)
    body = text[start:end].replace("\n", " ")
    return ("…" if start else "") + body + ("…" if end < len(text) else "")
