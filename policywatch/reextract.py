"""`policywatch reextract`: read the stored raw pages again with the current extractor.

(About 470 lines: one command, its batches and its rules for what may change without an event; the
long part below is why.)

When extraction improves (extraction.EXTRACTOR_REVISION is bumped), versions read by an older
extractor hold texts the current one would not produce: a cycle would compare a page's new
extraction with them and report a change that only comes from the extractor, not from the policy.
`reextract` brings them up to date without fetching anything and without any event or alert.

What it does, per source (the source's run lock is held, policywatch.locking, so no cycle writes the
same documents meanwhile; a busy source is skipped and reported):

- Versions whose `extractor_revision` is not the current one (every version with `everything`) are
  taken in batches of BATCH, oldest first. Each batch is read in one short session, extracted
  outside any transaction (CPU work that must not hold SQLite's write lock), and written in one
  transaction: a batch is whole or absent, and a run stopped half-way resumes where it stopped.
- A version is re-read from its raw page (`raw_sha256`, storage.raw) with
  `extract_document(html, version.url, source.content_selector)`, the selector of the source in the
  configuration. When the result differs from what the version holds, its title, display text,
  normalised text, content hash, 发文字号, issuer, date, character count and extraction method are
  rewritten; in every case its `extractor_revision` becomes the current one.
- History is kept honestly in `version_reextractions` (storage.models.VersionReextraction): one row
  per rewrite with the revisions from and to, when, the old and new content hashes, and everything
  the version held before (title, 发文字号, issuer, date, method in plain columns; the display and
  normalised texts zlib-compressed). A re-extraction that changes nothing leaves no row there.
  Change events are never rewritten: an event says what was seen when it was detected.
- Search: SQLite's FTS5 index follows the rewrite through the update trigger of migration 0008 (the
  old text is removed from the index, the new one added); PostgreSQL's pg_trgm indexes follow any
  update. The MinHash bands of a rewritten text (policywatch.reposts) are computed again.
- The document: `title` and `doc_number` are taken from its current version once that was
  re-read (a current version without a number takes the newest number among its versions, as a
  cycle keeps it), and `page_fingerprint` is cleared, so the next cycle reads the page in full once
  and compares it with the re-extracted text.
- Left untouched, counted as skipped with a reason (`failures`): a version without a raw page, one
  whose page the current extractor cannot read (or now takes for a "not found" page), one whose
  source is no longer configured (its selector is unknown), and those of a source a cycle holds.
  They stay at their old revision: the next run tries them again.
- Two consecutive versions of one document may now have the same content hash (they differed only
  by what the old extractor took for text): both are kept, no event either way; they are listed in
  `same_as_previous`.

A second run finds nothing to do (every version it could read is at the current revision).
"""

from __future__ import annotations

import itertools
import logging
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from policywatch.config import Config
from policywatch.extraction.content import EXTRACTOR_REVISION
from policywatch.locking import SourceBusy, source_lock
from storage.db import ensure_schema, session_factory, unit_of_work
from storage.models import Document, DocumentVersion, MinhashBand, RawPage, VersionReextraction, utcnow
from storage.raw import unpack_page
from storage.search_index import index_pending_versions

log = logging.getLogger(__name__)

# Versions per transaction: each holds its text twice (old and new) while the batch is open.
BATCH = 50


@dataclass
class ReextractSummary:
    versions_checked: int = 0
    rewritten: int = 0  # something the version held changed
    unchanged: int = 0  # the current extractor reads exactly what the version holds
    skipped: int = 0  # left untouched: see failures
    # {"source", "document_id", "version_id", "url", "reason"} per skipped version
    failures: list[dict[str, Any]] = field(default_factory=list)
    # {"document_id", "previous_version_id", "version_id"}: consecutive versions now the same text
    same_as_previous: list[dict[str, int]] = field(default_factory=list)

    def skip(self, source_id: str, pending: _Pending, reason: str) -> None:
        self.versions_checked += 1
        self.skipped += 1
        self.failures.append(
            {
                "source": source_id,
                "document_id": pending.document_id,
                "version_id": pending.version_id,
                "url": pending.url,
                "reason": reason,
            }
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Pending:
    """A version to re-read, as the read session saw it."""

    version_id: int
    document_id: int
    url: str
    raw_sha256: str | None
    revision: str | None


@dataclass(frozen=True)
class _Reading:
    """What the current extractor reads in a version's raw page, in the version's columns."""

    title: str
    text: str
    normalized_text: str
    content_hash: str
    doc_number: str | None
    issuer: str | None
    published_at: str | None
    chars: int
    extraction_method: str


_COLUMNS = tuple(_Reading.__dataclass_fields__)


# extractor_revision of an attachment's version: "file-<revision of extraction.files>".
FILE_REVISION_PREFIX = "file-"


def pack_text(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 6)


def unpack_text(body: bytes) -> str:
    """A text of version_reextractions (old_text, old_normalized_text)."""
    return zlib.decompress(body).decode("utf-8")


def reextract(
    config: Config,
    engine: Engine,
    source_ids: Sequence[str] | None = None,
    *,
    everything: bool = False,
    batch_size: int = BATCH,
) -> ReextractSummary:
    """Re-read the versions of older extractors (all versions with `everything`) of the selected
    sources (default: every source that has any) from their raw pages; see the module docstring.
    An unknown id in `source_ids` raises policywatch.config.ConfigError."""
    ensure_schema(engine)
    factory = session_factory(engine)
    selectors = {source.id: source.content_selector for source in config.sources}
    if source_ids:
        for source_id in source_ids:
            config.source(source_id)  # unknown id: ConfigError
        wanted = list(dict.fromkeys(source_ids))
    else:
        with factory() as session:
            wanted = list(
                session.scalars(
                    select(Document.source_id)
                    .join(DocumentVersion, DocumentVersion.document_id == Document.id)
                    .where(*_pending_conditions(everything))
                    .distinct()
                    .order_by(Document.source_id)
                )
            )
    summary = ReextractSummary()
    touched: set[int] = set()
    for source_id in wanted:
        if source_id not in selectors:
            reason = f"source {source_id} is not in the configuration (its content selector is unknown)"
            _skip_all(factory, summary, source_id, everything, reason)
            continue
        try:
            with source_lock(engine, source_id):
                touched |= _reextract_source(
                    factory, summary, source_id, selectors[source_id], everything, batch_size
                )
        except SourceBusy as busy:
            log.warning("source %s skipped: %s", source_id, busy)
            _skip_all(factory, summary, source_id, everything, f"skipped: {busy}")
    summary.same_as_previous = _same_as_previous(factory, sorted(touched))
    index_pending_versions(engine)  # the new versions' text into the search index, in one go
    return summary


def _pending_conditions(everything: bool) -> list[Any]:
    # Attachments' texts come from their files' formats (policywatch.attachments): never re-read as HTML.
    not_files = or_(
        DocumentVersion.extractor_revision.is_(None),
        DocumentVersion.extractor_revision.not_like(f"{FILE_REVISION_PREFIX}%"),
    )
    if everything:
        return [not_files]
    return [
        not_files,
        or_(
            DocumentVersion.extractor_revision.is_(None),
            DocumentVersion.extractor_revision != EXTRACTOR_REVISION,
        ),
    ]


def _pending(session: Session, source_id: str, everything: bool, after: int, limit: int) -> list[_Pending]:
    rows = session.execute(
        select(
            DocumentVersion.id,
            DocumentVersion.document_id,
            DocumentVersion.url,
            DocumentVersion.raw_sha256,
            DocumentVersion.extractor_revision,
        )
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.source_id == source_id, DocumentVersion.id > after, *_pending_conditions(everything))
        .order_by(DocumentVersion.id)
        .limit(limit)
    ).all()
    return [_Pending(*row) for row in rows]


def _skip_all(
    factory: sessionmaker[Session], summary: ReextractSummary, source_id: str, everything: bool, reason: str
) -> None:
    after = 0
    while True:
        with factory() as session:
            batch = _pending(session, source_id, everything, after, 1000)
        if not batch:
            return
        for pending in batch:
            summary.skip(source_id, pending, reason)
        after = batch[-1].version_id


def _reextract_source(
    factory: sessionmaker[Session],
    summary: ReextractSummary,
    source_id: str,
    selector: str | None,
    everything: bool,
    batch_size: int,
) -> set[int]:
    """Every pending version of one source, batch after batch; returns the documents re-read."""
    touched: set[int] = set()
    after = 0
    while True:
        with factory() as session:
            batch = _pending(session, source_id, everything, after, batch_size)
            keys = {p.raw_sha256 for p in batch if p.raw_sha256}
            raws = {
                row.sha256: row.body
                for row in session.execute(
                    select(RawPage.sha256, RawPage.body).where(RawPage.sha256.in_(keys))
                )
            }
        if not batch:
            return touched
        after = batch[-1].version_id
        readings: dict[int, _Reading | str] = {}
        for pending in batch:
            if pending.raw_sha256 is None:
                readings[pending.version_id] = "no raw page was stored for this version"
            elif pending.raw_sha256 not in raws:
                readings[pending.version_id] = f"raw page {pending.raw_sha256[:12]} is missing"
            else:
                readings[pending.version_id] = _read(raws[pending.raw_sha256], pending.url, selector)
        touched |= _write_batch(factory, summary, source_id, batch, readings)


def _read(body: bytes, url: str, selector: str | None) -> _Reading | str:
    """The current extractor's reading of a raw page, or why there is none."""
    # BeautifulSoup: imported by the first page read, as in a cycle.
    from policywatch.extraction.document import ExtractionError, extract_document, is_not_found_page

    try:
        html = unpack_page(body)
    except (zlib.error, UnicodeDecodeError) as exc:
        return f"raw page unreadable: {exc}"
    try:
        if is_not_found_page(html):
            return "the current extractor reads the page as a 'not found' page"
        doc = extract_document(html, url, selector)
    except ExtractionError as exc:
        return f"extraction: {exc}"
    except Exception as exc:  # a bug on one page must not stop the others
        log.exception("re-extracting %s failed", url)
        return f"extraction failed: {type(exc).__name__}: {exc}"
    normalised = doc.normalised_paragraphs
    return _Reading(
        title=doc.title,
        text="\n".join(doc.paragraphs),
        normalized_text="\n".join(normalised),
        content_hash=doc.content_hash,
        doc_number=doc.doc_number,
        issuer=doc.issuer,
        published_at=doc.published_at,
        chars=sum(len(p) for p in normalised),
        extraction_method=doc.method,
    )


def _write_batch(
    factory: sessionmaker[Session],
    summary: ReextractSummary,
    source_id: str,
    batch: list[_Pending],
    readings: dict[int, _Reading | str],
) -> set[int]:
    """One transaction: the batch's rewrites, their history rows, and their documents."""
    counts = ReextractSummary()  # joins the run's summary once the transaction is committed
    touched: set[int] = set()
    reread: set[int] = set()
    with unit_of_work(factory) as session:
        ids = [p.version_id for p in batch]
        versions = {
            v.id: v for v in session.scalars(select(DocumentVersion).where(DocumentVersion.id.in_(ids)))
        }
        for pending in batch:
            reading = readings[pending.version_id]
            version = versions.get(pending.version_id)
            if version is None or version.extractor_revision != pending.revision:
                continue  # changed since it was read (the run lock makes this rare): the next run sees it
            if isinstance(reading, str):
                counts.skip(source_id, pending, reading)
                continue
            counts.versions_checked += 1
            if _rewrite(session, version, reading):
                counts.rewritten += 1
            else:
                counts.unchanged += 1
            touched.add(version.document_id)
            reread.add(version.id)
        session.flush()
        for document_id in sorted(touched):
            _refresh_document(session, document_id, reread)
    summary.versions_checked += counts.versions_checked
    summary.rewritten += counts.rewritten
    summary.unchanged += counts.unchanged
    summary.skipped += counts.skipped
    summary.failures.extend(counts.failures)
    return touched


def _rewrite(session: Session, version: DocumentVersion, reading: _Reading) -> bool:
    """Bring `version` to the current extractor's reading; True when anything it held changed."""
    old = {name: getattr(version, name) for name in _COLUMNS}
    new = asdict(reading)
    if old != new:
        session.add(
            VersionReextraction(
                version_id=version.id,
                at=utcnow(),
                from_revision=version.extractor_revision,
                to_revision=EXTRACTOR_REVISION,
                old_content_hash=version.content_hash,
                new_content_hash=reading.content_hash,
                old_title=version.title,
                old_text=pack_text(version.text),
                old_normalized_text=pack_text(version.normalized_text),
                old_doc_number=version.doc_number,
                old_issuer=version.issuer,
                old_published_at=version.published_at,
                old_extraction_method=version.extraction_method,
            )
        )
        for name, value in new.items():
            setattr(version, name, value)
        if old["normalized_text"] != reading.normalized_text:
            _reindex_bands(session, version)
            _rerecord_references(session, version)
    if version.extractor_revision != EXTRACTOR_REVISION:
        version.extractor_revision = EXTRACTOR_REVISION
    return old != new


def refresh_current_version(session: Session, document_id: int, selector: str | None) -> bool:
    """Re-read a document's current version with the current extractor, in the cycle's session,
    before the cycle compares a new reading with it; True when it was re-read.

    A cycle run after an upgrade but before `policywatch reextract` would otherwise compare the
    current extractor's reading of the page with an older extractor's and report the difference as a
    change to the policy. Costs one small query when the version is already current (the usual case).
    """
    row = session.execute(
        select(DocumentVersion.id, DocumentVersion.extractor_revision, DocumentVersion.raw_sha256)
        .join(Document, Document.current_version_id == DocumentVersion.id)
        .where(Document.id == document_id)
    ).first()
    if row is None or row.extractor_revision == EXTRACTOR_REVISION or row.raw_sha256 is None:
        return False
    if (row.extractor_revision or "").startswith(FILE_REVISION_PREFIX):
        return False  # an attachment: its text comes from the file, not from HTML
    raw = session.get(RawPage, row.raw_sha256)
    version = session.get(DocumentVersion, row.id)
    if raw is None or version is None:
        return False
    reading = _read(raw.body, version.url or "", selector)
    if isinstance(reading, str):
        return False  # left to `policywatch reextract`, which reports why
    _rewrite(session, version, reading)
    session.flush()
    _refresh_document(session, document_id, {version.id})
    return True


def _reindex_bands(session: Session, version: DocumentVersion) -> None:
    """The MinHash bands of a rewritten text (repost detection compares the new text)."""
    from policywatch import reposts  # numpy: only when a text was rewritten

    session.execute(delete(MinhashBand).where(MinhashBand.version_id == version.id))
    reposts.index_version(session, version)


def _rerecord_references(session: Session, version: DocumentVersion) -> None:
    """What a rewritten text cites is read again from it (policywatch.policy_graph)."""
    from policywatch.policy_graph import forget_version, record_references

    document = session.get(Document, version.document_id)
    if document is not None:
        forget_version(session, version.id)
        record_references(session, version, document)


def _refresh_document(session: Session, document_id: int, reread: set[int]) -> None:
    doc = session.get(Document, document_id)
    if doc is None:
        return
    doc.page_fingerprint = None  # the next cycle reads the page in full once
    if doc.current_version_id not in reread:
        return
    current = session.get(DocumentVersion, doc.current_version_id)
    if current is None:
        return
    doc.title = current.title
    doc.doc_number = current.doc_number or session.scalar(
        select(DocumentVersion.doc_number)
        .where(DocumentVersion.document_id == doc.id, DocumentVersion.doc_number.is_not(None))
        .order_by(DocumentVersion.id.desc())
        .limit(1)
    )


def _same_as_previous(factory: sessionmaker[Session], document_ids: list[int]) -> list[dict[str, int]]:
    """Consecutive versions of the re-read documents that now have the same content hash."""
    found: list[dict[str, int]] = []
    with factory() as session:
        for start in range(0, len(document_ids), 500):
            chunk = document_ids[start : start + 500]
            rows = session.execute(
                select(DocumentVersion.document_id, DocumentVersion.id, DocumentVersion.content_hash)
                .where(DocumentVersion.document_id.in_(chunk))
                .order_by(DocumentVersion.document_id, DocumentVersion.id)
            ).all()
            for previous, row in itertools.pairwise(rows):
                if previous.document_id == row.document_id and previous.content_hash == row.content_hash:
                    found.append(
                        {
                            "document_id": row.document_id,
                            "previous_version_id": previous.id,
                            "version_id": row.id,
                        }
                    )
    return found
