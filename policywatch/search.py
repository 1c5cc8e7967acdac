"""Search as analysts use it: `search(session, SearchQuery) -> list[dict]`.

One query finds documents by what analysts type:
- a 发文字号 in any bracket form (`国数发[2024]3号` finds `国数发〔2024〕3号`: numbers are stored as
  printed, so candidates come from a LIKE on the prefix, year and serial and are confirmed on the
  canonical form), or a number's prefix (`赣府发`: every document numbered so);
- the issuer, the title and the text (the search index of storage.queries: FTS5 trigrams on SQLite,
  pg_trgm on PostgreSQL);
- with `history`, every version, not only the current ones: a hit says in which versions the phrase
  stood and since when it is gone (a figure since replaced is found, marked as no longer current).

Filters: source, issuer, published date range, event kind (documents that had such an event),
status (active, removed). Ranking: the exact 发文字号 first, then a number prefix, the title, the
issuer, then the text; within each, documents in force before removed ones, more occurrences
first (when at most COUNTED_TEXTS texts hold the phrase), then newest. Every hit carries the
document's status, so a removed document is never listed as if it were in force.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, exists, select, table, text
from sqlalchemy.orm import Session

from policywatch.extraction import canonical_doc_number, normalise_text, parse_doc_number
from storage.models import ChangeEvent, Document, DocumentVersion, seen_until
from storage.queries import (
    FTS_TABLE,
    TRIGRAM_MIN_CHARS,
    _escape_like,
    _fts_phrase,
    _has_fts,
    iso,
    search_rows,
    snippet,
)
from storage.search_index import index_pending_versions

# How many candidate documents one search ranks at most (a page is cut from them).
MAX_CANDIDATES = 2000
# Text hits are ranked by how often they hold the phrase when there are at most this many (their
# texts are read); more, and they are ranked newest first.
COUNTED_TEXTS = 200
_CANONICAL = re.compile(r"^(?P<prefix>.+?)〔(?P<year>\d{4})〕(?P<serial>\d+)号$")
_NUMBER_PREFIX = re.compile(r"^[\u4e00-\u9fff]{2,12}$")
RANKS = {"number": 0, "number-prefix": 1, "title": 2, "issuer": 3, "text": 4, "filter": 5}


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    history: bool = False  # every version, not only the current ones
    source: str | None = None
    issuer: str | None = None
    published_from: str | None = None  # YYYY-MM-DD, inclusive
    published_to: str | None = None  # YYYY-MM-DD, inclusive
    kind: str | None = None  # documents that had an event of this kind
    status: str | None = None  # active | removed
    limit: int = 50
    offset: int = 0

    @property
    def has_filters(self) -> bool:
        return any((self.source, self.issuer, self.published_from, self.published_to, self.kind, self.status))


def canonical_number(query: str) -> str | None:
    """The 发文字号 a query is, in the canonical form, or None."""
    printed = parse_doc_number(query) or parse_doc_number(normalise_text(query))
    if printed is None:
        return None
    return canonical_doc_number(printed)


def documents_numbered(session: Session, canonical: str) -> list[int]:
    m = _CANONICAL.match(canonical)
    if m is None:
        return []
    pattern = f"%{_escape_like(m.group('prefix'))}%{m.group('year')}%{m.group('serial')}%"
    rows = session.execute(
        select(Document.id, Document.doc_number, DocumentVersion.doc_number)
        .outerjoin(DocumentVersion, DocumentVersion.id == Document.current_version_id)
        .where(
            Document.doc_number.like(pattern, escape="\\")
            | DocumentVersion.doc_number.like(pattern, escape="\\")
        )
        .limit(MAX_CANDIDATES)
    )
    out = []
    for doc_id, *numbers in rows:
        if any(n and canonical_doc_number(n) == canonical for n in numbers):
            out.append(doc_id)
    return out


def _prefix_matches(session: Session, prefix: str) -> list[int]:
    """Documents whose 发文字号 starts with `prefix` (赣府发 → 赣府发〔2022〕11号)."""
    rows = session.scalars(
        select(Document.id)
        .where(Document.doc_number.like(f"{_escape_like(prefix)}%", escape="\\"))
        .order_by(Document.id.desc())
        .limit(MAX_CANDIDATES)
    )
    return list(rows)


def _title_matches(session: Session, needle: str) -> list[int]:
    """Documents whose (current) title holds `needle`: the documents table's own copy of it, whose
    rows are short (the versions' rows hold whole texts)."""
    pattern = f"%{_escape_like(needle)}%"
    query = select(Document.id).where(Document.title.like(pattern, escape="\\"))
    return list(session.scalars(query.order_by(Document.id.desc()).limit(MAX_CANDIDATES)))


def _issuer_matches(session: Session, needle: str) -> list[int]:
    """Documents whose current version's issuer holds `needle` (the (issuer, id) index of migration
    0019 is scanned, not the versions)."""
    pattern = f"%{_escape_like(needle)}%"
    versions = select(DocumentVersion.id).where(DocumentVersion.issuer.like(pattern, escape="\\"))
    query = select(Document.id).where(Document.current_version_id.in_(versions))
    return list(session.scalars(query.order_by(Document.id.desc()).limit(MAX_CANDIDATES)))


def _text_versions(session: Session, needle: str, history: bool) -> list[int]:
    """Ids of the versions (current ones only, unless `history`) whose text or title holds `needle`."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite" and len(needle) >= TRIGRAM_MIN_CHARS and _has_fts(session):
        index_pending_versions(session.get_bind().engine)
        fts = table(FTS_TABLE, column("rowid"))
        query = select(fts.c.rowid).where(text(f"{FTS_TABLE} MATCH :phrase"))
        if not history:
            # "+ 0": see storage.queries.search_rows (the phrase query runs once, not per version).
            current = select(Document.current_version_id).where(Document.current_version_id.is_not(None))
            query = query.where((fts.c.rowid + 0).in_(current))
        query = query.order_by(fts.c.rowid.desc()).limit(MAX_CANDIDATES)
        return [row[0] for row in session.execute(query, {"phrase": _fts_phrase(needle)})]
    pattern = f"%{_escape_like(needle)}%"
    query = select(DocumentVersion.id).where(
        DocumentVersion.normalized_text.like(pattern, escape="\\")
        | DocumentVersion.title.like(pattern, escape="\\")
    )
    if not history:
        query = query.join(Document, Document.current_version_id == DocumentVersion.id)
    return list(session.scalars(query.order_by(DocumentVersion.id.desc()).limit(MAX_CANDIDATES)))


def _filtered(session: Session, q: SearchQuery, ids: list[int] | None) -> list[int]:
    """The documents (among `ids`, or all) that pass the filters, newest first."""
    query = select(Document.id).outerjoin(DocumentVersion, DocumentVersion.id == Document.current_version_id)
    if ids is not None:
        if not ids:
            return []
        query = query.where(Document.id.in_(ids))
    if q.source:
        query = query.where(Document.source_id == q.source)
    if q.status:
        query = query.where(Document.status == q.status)
    if q.issuer:
        query = query.where(
            DocumentVersion.issuer.like(f"%{_escape_like(normalise_text(q.issuer))}%", escape="\\")
        )
    if q.published_from:
        query = query.where(DocumentVersion.published_at >= q.published_from)
    if q.published_to:
        query = query.where(DocumentVersion.published_at <= q.published_to)
    if q.kind:
        query = query.where(
            exists().where(ChangeEvent.document_id == Document.id, ChangeEvent.kind == q.kind)
        )
    return list(session.scalars(query.order_by(Document.id.desc()).limit(MAX_CANDIDATES)))


def search(session: Session, q: SearchQuery) -> list[dict[str, Any]]:
    """One page of ranked hits (see the module docstring). Each row keeps the CLI's contract keys
    (document_id, url, title, version_id, snippet) and adds status, doc_number, issuer,
    published_at, source, match and, with `history`, versions and gone_since."""
    needle = normalise_text(q.text)
    if not needle and not q.has_filters:
        return []
    rank: dict[int, tuple[int, int]] = {}  # document id -> (rank, -occurrences)
    versions_of: dict[int, list[int]] = {}
    if needle:
        canonical = canonical_number(needle)
        if canonical:
            for doc_id in documents_numbered(session, canonical):
                rank.setdefault(doc_id, (RANKS["number"], 0))
        if _NUMBER_PREFIX.match(needle):
            for doc_id in _prefix_matches(session, needle):
                rank.setdefault(doc_id, (RANKS["number-prefix"], 0))
        for doc_id in _title_matches(session, needle):
            rank.setdefault(doc_id, (RANKS["title"], 0))
        for doc_id in _issuer_matches(session, needle):
            rank.setdefault(doc_id, (RANKS["issuer"], 0))
        version_ids = _text_versions(session, needle, q.history)
        if len(version_ids) <= COUNTED_TEXTS:
            # Few hits: rank them by how often they say it (the texts are read once, here).
            for version_id, doc_id, body in _version_texts(session, version_ids):
                versions_of.setdefault(doc_id, []).append(version_id)
                count = body.count(needle) or body.lower().count(needle.lower())
                best = rank.get(doc_id)
                if best is None or (best[0] == RANKS["text"] and -count < best[1]):
                    rank[doc_id] = (RANKS["text"], -count)
        else:
            # A common phrase: newest first, without reading thousands of texts for one page.
            for version_id, doc_id in _version_documents(session, version_ids):
                versions_of.setdefault(doc_id, []).append(version_id)
                rank.setdefault(doc_id, (RANKS["text"], 0))
        allowed = _filtered(session, q, list(rank))  # newest first
        removed = set(
            session.scalars(select(Document.id).where(Document.id.in_(allowed), Document.status == "removed"))
        )
        # Within a rank: documents in force before removed ones, then newest first.
        ordered = sorted(allowed, key=lambda d: (rank[d][0], d in removed, rank[d][1], -d))
    else:
        ordered = _filtered(session, q, None)
        rank = {d: (RANKS["filter"], 0) for d in ordered}
    page = ordered[q.offset : q.offset + q.limit]
    return [
        _hit(session, doc_id, needle, rank[doc_id][0], versions_of.get(doc_id, []), q.history)
        for doc_id in page
    ]


def _version_documents(session: Session, version_ids: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start in range(0, len(version_ids), 500):
        chunk = version_ids[start : start + 500]
        out.extend(
            (v, d)
            for v, d in session.execute(
                select(DocumentVersion.id, DocumentVersion.document_id).where(DocumentVersion.id.in_(chunk))
            )
        )
    return out


def _version_texts(session: Session, version_ids: list[int]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for start in range(0, len(version_ids), 500):
        chunk = version_ids[start : start + 500]
        out.extend(
            session.execute(
                select(
                    DocumentVersion.id, DocumentVersion.document_id, DocumentVersion.normalized_text
                ).where(DocumentVersion.id.in_(chunk))
            ).all()
        )
    return [(v, d, t) for v, d, t in out]


def _hit(
    session: Session, doc_id: int, needle: str, rank: int, with_needle: list[int], history: bool
) -> dict[str, Any]:
    doc = session.get(Document, doc_id)
    assert doc is not None
    current = session.get(DocumentVersion, doc.current_version_id) if doc.current_version_id else None
    shown = current
    if history and with_needle and (current is None or current.id not in with_needle):
        shown = session.get(DocumentVersion, max(with_needle))  # the newest version that held it
    text_ = shown.normalized_text if shown else ""
    row: dict[str, Any] = {
        "document_id": doc.id,
        "url": doc.url,
        "title": (current.title if current else None) or doc.title,
        "version_id": shown.id if shown else None,
        "snippet": (snippet(text_, needle) if needle else "")
        or ((shown.title if shown else doc.title) or ""),
        "status": doc.status,
        "doc_number": (current.doc_number if current else None) or doc.doc_number,
        "issuer": current.issuer if current else None,
        "published_at": current.published_at if current else None,
        "source": doc.source_id,
        "match": next(name for name, value in RANKS.items() if value == rank),
    }
    if history:
        row.update(_history(session, doc, sorted(with_needle)))
    return row


def _history(session: Session, doc: Document, with_needle: list[int]) -> dict[str, Any]:
    """In which versions the phrase stood, and since when it is gone (the first later version
    without it), for a history search."""
    versions = list(
        session.scalars(
            select(DocumentVersion).where(DocumentVersion.document_id == doc.id).order_by(DocumentVersion.id)
        )
    )
    holding = set(with_needle)
    rows = [
        {
            "version_id": v.id,
            "first_seen_at": iso(v.first_seen_at),
            "last_seen_at": iso(seen_until(v.id, v.last_seen_at, doc)),
            "current": v.id == doc.current_version_id,
        }
        for v in versions
        if v.id in holding
    ]
    gone_since = None
    if holding and doc.current_version_id not in holding:
        last = max(holding)
        later = [v for v in versions if v.id > last]
        gone_since = iso(later[0].first_seen_at) if later else None
    return {"versions": rows, "in_current": doc.current_version_id in holding, "gone_since": gone_since}


def search_documents(session: Session, query: str, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Documents whose current normalised text or title contains `query` (NFKC, so widths match),
    the most recently changed first."""
    needle = normalise_text(query)
    if not needle:
        return []
    results = []
    for doc, version in search_rows(session, needle, limit, offset):
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
