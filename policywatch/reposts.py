"""Reposts: a new document whose text is already known from another URL or source.

Exact reposts have the same content hash. Near-duplicates (a news site's copy with its own source
line, a "返回首页" left in the body, a retitled headline) are found in two steps:

1. candidates by MinHash LSH: each version's normalised body text (title excluded: reposts retitle)
   is cut into character 4-grams; a one-permutation MinHash of 64 bins is split into 16 bands of 4,
   and every band is an indexed key (`minhash_bands`). Texts with Jaccard similarity 0.8 share a
   band with probability > 0.999; unrelated texts almost never do. The 4-grams are hashed with numpy,
   all at once: the gram's four code points packed into 64 bits, then splitmix64's finaliser. The
   hash is part of the stored keys: changing it needs a migration that re-indexes every version, as
   storage/migrations/versions/0005_minhash_v2.py does.
2. confirmation with rapidfuzz: the normalised texts must be at least `MIN_RATIO` % alike, and two
   documents with different 发文字号 are never one (a template notice re-issued with new figures).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from policywatch.identity import number_key
from storage.models import Document, DocumentVersion, MinhashBand

SHINGLE = 4
BINS = 64
BANDS = 16
ROWS = BINS // BANDS
MIN_RATIO = 90.0  # rapidfuzz ratio (0..100) of the normalised texts
MIN_CHARS = 80  # shorter texts are too generic to call one a repost of another (exact match aside)
BACKFILL_LIMIT = 25  # versions indexed per new document, oldest first (changed versions, old data)
MAX_CANDIDATES = 50

_EMPTY = (1 << 58) - 1
_KEY_MASK = (1 << 63) - 1  # band keys are stored as signed 64-bit integers: keep them positive


def body_text(normalized_text: str) -> str:
    """What is compared: the normalised paragraphs run together (paragraph breaks are layout)."""
    return normalized_text.replace("\n", "")


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


_NO_CHAR = 0x1F_FFFF  # pads grams of texts shorter than SHINGLE: above every code point (0x10FFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _gram_hashes(text: str) -> np.ndarray:
    """64-bit hashes of every character 4-gram of `text` (one gram, padded, if it is shorter).

    Code points fit in 21 bits: the first three are packed side by side, the fourth multiplied by an
    odd constant is xor-ed in, and splitmix64's finaliser (a bijection) mixes the result. Arithmetic
    wraps modulo 2**64, so the hash is the same on every machine and in every process.
    """
    # surrogatepass: a lone surrogate left by a broken page is a code point like any other
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)
    if len(points) < SHINGLE:
        points = np.concatenate([points, np.full(SHINGLE - len(points), _NO_CHAR, dtype=np.uint64)])
    n = len(points) - SHINGLE + 1
    # In place, into two buffers: a fresh array per step costs more (page faults) than the step.
    h = points[1 : n + 1] << np.uint64(21)
    h |= points[:n]
    tmp = points[2 : n + 2] << np.uint64(42)
    h |= tmp
    np.multiply(points[3 : n + 3], _GOLDEN, out=tmp)
    h ^= tmp
    for shift, factor in ((30, _MIX1), (27, _MIX2), (31, None)):
        np.right_shift(h, np.uint64(shift), out=tmp)
        h ^= tmp
        if factor is not None:
            h *= factor
    return h


def signature(text: str) -> tuple[int, ...]:
    """One-permutation MinHash of `text`'s character 4-grams: BINS values.

    Each 4-gram's 64-bit hash (`_gram_hashes`) picks a bin (low 6 bits) and competes for that bin's
    minimum (the rest). Empty bins (short texts) take the value of the next non-empty bin, marked
    with the distance, so that two texts agree on an empty bin only when they agree on its neighbour.
    """
    h = _gram_hashes(body_text(text))
    minima = np.full(BINS, _EMPTY + 1, dtype=np.uint64)
    np.minimum.at(minima, (h & np.uint64(BINS - 1)).astype(np.intp), h >> np.uint64(6))
    mins = [int(v) for v in minima]  # plain ints: they are hashed into band keys and stored
    filled = [i for i, value in enumerate(mins) if value <= _EMPTY]
    if not filled:
        return tuple(mins)
    out = list(mins)
    for i, value in enumerate(mins):
        if value > _EMPTY:
            distance, j = 1, (i + 1) % BINS
            while mins[j] > _EMPTY:
                distance, j = distance + 1, (j + 1) % BINS
            out[i] = (mins[j] + distance * 0x9E3779B97F4A7C15) & _EMPTY
    return tuple(out)


def band_keys(sig: Sequence[int]) -> list[int]:
    """The LSH keys of a signature: one per band of ROWS values, the band's index included."""
    keys = []
    for band in range(BANDS):
        rows = sig[band * ROWS : (band + 1) * ROWS]
        data = band.to_bytes(1, "big") + b"".join(v.to_bytes(8, "big") for v in rows)
        keys.append(_hash64(data) & _KEY_MASK)
    return keys


def similarity(sig_a: Sequence[int], sig_b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of the two texts' 4-gram sets."""
    return sum(a == b for a, b in zip(sig_a, sig_b, strict=True)) / BINS


# --- the index --------------------------------------------------------------------------------------


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, int]]) -> None:
    """Insert band rows; a row another transaction added meanwhile is no error (PostgreSQL, SQLite)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    # One statement with the rows as parameters (executemany): its compiled form is cached, where
    # `.values(rows)` builds and compiles a new multi-row statement for every version (most of
    # what indexing a version cost).
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(MinhashBand).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(MinhashBand).on_conflict_do_nothing(), rows)
    else:
        for row in rows:
            if session.get(MinhashBand, (row["band_key"], row["version_id"])) is None:
                session.add(MinhashBand(**row))
        session.flush()


def index_version(session: Session, version: DocumentVersion) -> list[int]:
    """Record the band keys of `version`; returns them."""
    keys = band_keys(signature(version.normalized_text))
    rows = [{"band_key": k, "version_id": version.id, "document_id": version.document_id} for k in set(keys)]
    _insert_ignoring_duplicates(session, rows)
    return keys


def backfill(session: Session, limit: int = BACKFILL_LIMIT) -> int:
    """Index versions that have no band rows yet (new versions of changed documents, older data)."""
    missing = session.scalars(
        select(DocumentVersion)
        .where(~exists().where(MinhashBand.version_id == DocumentVersion.id))
        .order_by(DocumentVersion.id)
        .limit(limit)
    ).all()
    for version in missing:
        index_version(session, version)
    return len(missing)


# --- finding the original -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    document: Document
    version_id: int
    ratio: float  # 100 for an exact repost
    exact: bool


def _different_numbers(a: str | None, b: str | None) -> bool:
    key_a, key_b = number_key(a), number_key(b)
    return key_a is not None and key_b is not None and key_a != key_b


def find_original(
    session: Session, version: DocumentVersion, keys: Iterable[int] | None = None
) -> Match | None:
    """The earliest other document whose text `version`'s text repeats (exactly or nearly), if any."""
    exact = session.execute(
        select(Document, DocumentVersion)
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .where(DocumentVersion.content_hash == version.content_hash, Document.id != version.document_id)
        .order_by(DocumentVersion.id)
        .limit(MAX_CANDIDATES)
    ).all()
    for same_document, same_version in exact:
        if not _different_numbers(version.doc_number, same_version.doc_number):
            return Match(_root(session, same_document), same_version.id, 100.0, True)
    text = body_text(version.normalized_text)
    keys = list(keys) if keys is not None else band_keys(signature(version.normalized_text))
    candidate_ids = session.scalars(
        select(MinhashBand.version_id)
        .where(MinhashBand.band_key.in_(set(keys)), MinhashBand.document_id != version.document_id)
        .distinct()
        .order_by(MinhashBand.version_id)
        .limit(MAX_CANDIDATES)
    ).all()
    for candidate_id in candidate_ids:
        candidate = session.get(DocumentVersion, candidate_id)
        if candidate is None:
            continue
        other = body_text(candidate.normalized_text)
        if text == other:
            ratio = 100.0
        else:
            if min(len(text), len(other)) < MIN_CHARS:
                continue
            ratio = fuzz.ratio(text, other, score_cutoff=MIN_RATIO)
            if not ratio:
                continue
        if _different_numbers(version.doc_number, candidate.doc_number):
            continue
        document = session.get(Document, candidate.document_id)
        if document is not None:
            return Match(_root(session, document), candidate.id, float(ratio), text == other)
    return None


def _root(session: Session, document: Document) -> Document:
    """A repost of a repost links to the first original."""
    seen = {document.id}
    while document.republished_of_id and document.republished_of_id not in seen:
        parent = session.get(Document, document.republished_of_id)
        if parent is None:
            break
        seen.add(parent.id)
        document = parent
    return document
