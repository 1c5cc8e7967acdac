"""The policy graph: which documents a document references (cites, implements, amends, repeals), and
which documents reference it.

(About 520 lines in one module: recording, resolving and reading references share the Resolver and
its title keys; the text side, finding references, is policywatch.citations.)

Recorded once per new version, in the transaction that stores the version (before its event's
alerts are queued, so a subscriber can follow a document: "tell me when something new cites or
implements 国发〔2021〕29号"). References come from the text (policywatch.references) and are
resolved to known documents:

1. by 发文字号 (any bracket form): the document with that number, its original rather than a repost;
2. by title: the title in 《》 against each known document's title and the title its notice
   publishes (`国务院关于印发“十四五”数字经济发展规划的通知` publishes `“十四五”数字经济发展规划`),
   compared without quotes and spaces, then, failing that, fuzzily (rapidfuzz, ≥ 92) without years
   and edition marks, for citations that omit quotation marks or a year.

A reference no known document answers is kept unresolved, and tried again (`resolve_pending`, at
the end of each cycle) against documents that appeared since: a provincial plan stored before the
national plan it cites still finds it. Only a document's current version counts for the graph: a
reference dropped by a later version no longer links the two documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from policywatch.citations import FoundReferences, publishes
from policywatch.identity import number_key, parse_number, title_key
from storage.models import Document, DocumentReference, DocumentVersion

RELATION_KINDS = ("implements", "amends", "repeals", "cites")
RELATION_LABELS = {"cites": "引用", "implements": "贯彻落实", "amends": "修订", "repeals": "废止"}
# How the citing side reads: "X 贯彻落实 this document", "X 废止 this document".
INCOMING_LABELS = {"cites": "被引用", "implements": "实施文件", "amends": "修订文件", "repeals": "废止文件"}

FUZZY_CUTOFF = 92

# Years and editions that citations often leave out: （2021—2025年）, (2023年), 2024年版, （试行）.
_LOOSE = re.compile(
    r"[（(]?\d{4}(?:[-—–~至]\d{4})?年?(?:版|度)?[)）]?|[（(](?:试行|暂行|修订|征求意见稿)[)）]"
)


def document_title_keys(title: str | None) -> set[str]:
    """The keys a document answers to by title: its own and the one its notice publishes."""
    if not title:
        return set()
    keys = {title_key(title)}
    inner = publishes(title)
    if inner:
        keys.add(title_key(inner))
    return {k for k in keys if len(k) >= 4}


def loose_key(key: str) -> str:
    """A title key without years or edition marks, for the fuzzy comparison."""
    return _LOOSE.sub("", key)


def follow_key(text: str) -> str:
    """What a subscriber's `follows` entry matches: a canonical 发文字号, or `t:` and a title key."""
    number = number_key(text)
    if number:
        return number
    inner = publishes(text.strip().strip("《》")) or text
    return "t:" + title_key(inner)


@dataclass
class KnownDocument:
    id: int
    number: str | None
    keys: set[str]
    original: bool  # not a repost of another document, not an attached file


@dataclass
class Resolution:
    document_id: int
    how: str  # number | title | fuzzy-title


@dataclass
class Resolver:
    """Known documents by number, by title key and by loose title key (for the fuzzy comparison)."""

    by_number: dict[str, list[KnownDocument]] = field(default_factory=dict)
    by_key: dict[str, list[KnownDocument]] = field(default_factory=dict)
    loose: dict[str, list[KnownDocument]] = field(default_factory=dict)
    ids: set[int] = field(default_factory=set)
    max_id: int = 0

    @classmethod
    def load(cls, session: Session, newer_than: int = 0) -> Resolver:
        """Every known document (with an id above `newer_than`)."""
        return cls.of(session, Document.id > newer_than)

    @classmethod
    def of(cls, session: Session, *where: Any, limit: int | None = None) -> Resolver:
        """The known documents that match `where`."""
        resolver = cls()
        query = select(
            Document.id,
            Document.title,
            Document.doc_number,
            Document.republished_of_id,
            Document.attachment_of,
        ).where(*where)
        for doc_id, title, number, republished_of, attachment_of in session.execute(query.limit(limit)):
            resolver.add(doc_id, title, number, original=republished_of is None and attachment_of is None)
        return resolver

    def add(self, doc_id: int, title: str | None, number: str | None, *, original: bool = True) -> None:
        if doc_id in self.ids:
            return
        self.ids.add(doc_id)
        known = KnownDocument(doc_id, number_key(number), document_title_keys(title), original)
        if known.number:
            self.by_number.setdefault(known.number, []).append(known)
        for key in known.keys:
            self.by_key.setdefault(key, []).append(known)
            self.loose.setdefault(loose_key(key), []).append(known)
        self.max_id = max(self.max_id, doc_id)

    def add_document(self, doc: Document) -> None:
        """A document the cycle just recorded (the index was loaded before it existed)."""
        self.add(
            doc.id,
            doc.title,
            doc.doc_number,
            original=doc.republished_of_id is None and doc.attachment_of is None,
        )

    def resolve(
        self,
        title: str | None,
        number: str | None,
        *,
        exclude: int | None = None,
        newer_than: int = 0,
        fuzzy: bool = True,
    ) -> Resolution | None:
        """The known document a reference names (only documents with ids above `newer_than`)."""
        if number:
            best = _best(self.by_number.get(number, ()), exclude, newer_than)
            if best is not None:
                return Resolution(best.id, "number")
        if not title:
            return None
        key = title_key(title)
        if len(key) < 4:
            return None
        best = _best(self.by_key.get(key, ()), exclude, newer_than)
        if best is not None:
            return Resolution(best.id, "title")
        return self._fuzzy(key, exclude, newer_than) if fuzzy else None

    def _fuzzy(self, key: str, exclude: int | None, newer_than: int) -> Resolution | None:
        from rapidfuzz import fuzz, process

        loose = loose_key(key)
        if len(loose) < 6 or not self.loose:
            return None
        for choice, _score, _ in process.extract(
            loose, list(self.loose), scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=3
        ):
            best = _best(self.loose[choice], exclude, newer_than)
            if best is not None:
                return Resolution(best.id, "fuzzy-title")
        return None


def _best(
    candidates: Iterable[KnownDocument], exclude: int | None, newer_than: int = 0
) -> KnownDocument | None:
    """The original (not a repost, not a file) first, then the oldest."""
    ranked = sorted(
        (c for c in candidates if c.id != exclude and c.id > newer_than), key=lambda c: (not c.original, c.id)
    )
    return ranked[0] if ranked else None


def _like(text: str) -> str:
    """A LIKE pattern that finds `text` whatever quotation marks and spaces a stored title puts in it."""
    core = re.sub(r"[\s\"'《》“”‘’「」%_\\]+", "%", text.strip())
    return f"%{core.strip('%')}%"


def _candidates(session: Session, title: str | None, number: str | None) -> Resolver:
    """A resolver over the documents a reference may name, found with indexed or narrow reads only
    (the exact number's spellings, titles containing the cited one): no full load per version."""
    clauses = []
    parsed = parse_number(number) if number else None
    if parsed is not None:
        clauses.append(Document.doc_number.like(f"%{parsed.prefix}%{parsed.year}%{parsed.serial}%"))
    key = title_key(title) if title else ""
    if len(key) >= 4 and title:
        clauses.append(Document.title.like(_like(title)))
    return Resolver.of(session, or_(*clauses), limit=200) if clauses else Resolver()


def record_references(
    session: Session,
    version: DocumentVersion,
    document: Document,
    resolver: Callable[[], Resolver] | None = None,
    previous: DocumentVersion | None = None,
    precomputed: FoundReferences | None = None,
) -> list[DocumentReference]:
    """The references of a just-stored version, added to the caller's transaction.

    A changed version that references what `previous` did (the usual edit) takes the previous
    rows' resolutions as they are: no lookup. Otherwise each reference is resolved now by number or
    exact title, with the cycle's `resolver` (loaded once per cycle, when first needed) or, without
    one, with narrow reads of the candidates; the fuzzy title comparison (which needs every title)
    is left to `resolve_pending` at the end of the cycle (`checked_through` 0). A reference to the
    document itself (its own number, the plan its notice publishes) is not one. `precomputed`: the
    references as the observe stage found them, used when found for this text, title and number."""
    from policywatch.citations import find_references

    own_number = number_key(document.doc_number or version.doc_number)
    own_keys = document_title_keys(version.title or document.title)
    args = (version.text, version.title, document.doc_number or version.doc_number)
    cited = precomputed.for_args(*args) if precomputed is not None else None
    if cited is None:
        cited = find_references(args[0], title=args[1], number=args[2])
    found_refs = [
        ref
        for ref in cited
        if not (ref.doc_number and ref.doc_number == own_number)
        # A new edition that repeals the old one of the same title names another document.
        and not (
            ref.title and not ref.doc_number and title_key(ref.title) in own_keys and ref.kind != "repeals"
        )
    ]
    if not found_refs:
        return []
    before = _same_as_before(session, previous, found_refs)
    known = resolver() if resolver is not None and before is None else None
    rows = []
    for ref in found_refs:
        old = before.get((ref.kind, ref.title, ref.doc_number)) if before is not None else None
        if old is not None:
            target, how, checked = old.target_document_id, old.resolved_by, old.checked_through
        else:
            candidates = known or _candidates(session, ref.title, ref.doc_number)
            found = candidates.resolve(ref.title, ref.doc_number, exclude=document.id, fuzzy=known is None)
            if (
                found is None
                and candidates.resolve(ref.title, ref.doc_number, fuzzy=known is None) is not None
            ):
                continue  # it names this very document (a title variant of its own)
            target, how, checked = (found.document_id, found.how, 0) if found else (None, None, 0)
        row = DocumentReference(
            version_id=version.id,
            document_id=document.id,
            kind=ref.kind,
            title=ref.title,
            doc_number=ref.doc_number,
            context=ref.context[:500],
            target_document_id=target,
            resolved_by=how,
            checked_through=checked,
        )
        session.add(row)
        rows.append(row)
    return rows


def _same_as_before(
    session: Session, previous: DocumentVersion | None, refs: Sequence[Any]
) -> dict[tuple[str, str | None, str | None], DocumentReference] | None:
    """The previous version's rows by (kind, title, number), when it referenced exactly these."""
    if previous is None:
        return None
    old = session.scalars(select(DocumentReference).where(DocumentReference.version_id == previous.id)).all()
    by_identity = {(r.kind, r.title, r.doc_number): r for r in old}
    if set(by_identity) != {(r.kind, r.title, r.doc_number) for r in refs}:
        return None
    return by_identity


def has_references(session: Session, version_id: int) -> bool:
    found = session.scalar(
        select(DocumentReference.id).where(DocumentReference.version_id == version_id).limit(1)
    )
    return found is not None


def resolve_pending(session: Session) -> int:
    """Try the unresolved references again, each against the documents that appeared since it was
    last tried (all documents for a reference never tried fuzzily); returns how many now resolve.
    One indexed read when nothing is pending."""
    newest = session.scalar(select(func.max(Document.id))) or 0
    stale = (
        select(DocumentReference)
        .where(DocumentReference.target_document_id.is_(None), DocumentReference.checked_through < newest)
        .order_by(DocumentReference.id)
    )
    oldest = session.scalar(
        select(func.min(DocumentReference.checked_through)).where(
            DocumentReference.target_document_id.is_(None), DocumentReference.checked_through < newest
        )
    )
    if oldest is None:
        return 0
    resolver = Resolver.load(session, newer_than=oldest)
    resolved = 0
    for ref in session.scalars(stale):
        found = resolver.resolve(
            ref.title, ref.doc_number, exclude=ref.document_id, newer_than=ref.checked_through
        )
        if found is not None:
            ref.target_document_id, ref.resolved_by = found.document_id, found.how
            resolved += 1
        ref.checked_through = newest
    session.flush()
    return resolved


def rebuild_references(session: Session) -> tuple[int, int]:
    """Read every current version's references again (a store made before references were read,
    or after the extractor changed); returns (versions, references)."""
    versions = references = 0
    for version, document in session.execute(
        select(DocumentVersion, Document).join(Document, Document.current_version_id == DocumentVersion.id)
    ):
        forget_version(session, version.id)
        references += len(record_references(session, version, document))
        versions += 1
    session.flush()
    resolve_pending(session)
    return versions, references


def forget_version(session: Session, version_id: int) -> None:
    """A version re-read by a newer extractor: its references are recorded again from the new text."""
    session.execute(delete(DocumentReference).where(DocumentReference.version_id == version_id))


# --- reading the graph ---------------------------------------------------------------------------


def reference_keys(session: Session, version_id: int) -> frozenset[str]:
    """Every key (canonical 发文字号, `t:` title key) of what a version references, its targets' too:
    what `follows` entries are matched against."""
    keys: set[str] = set()
    targets = []
    for ref in session.scalars(select(DocumentReference).where(DocumentReference.version_id == version_id)):
        if ref.doc_number:
            keys.add(ref.doc_number)
        if ref.title:
            keys.add("t:" + title_key(ref.title))
        if ref.target_document_id is not None:
            targets.append(ref.target_document_id)
    if targets:
        for title, number in session.execute(
            select(Document.title, Document.doc_number).where(Document.id.in_(targets))
        ):
            if number_key(number):
                keys.add(number_key(number) or "")
            keys.update("t:" + k for k in document_title_keys(title))
    return frozenset(keys)


# Provinces (and their 发文字号 abbreviations), placed on a grid that reads like a map of China.
PROVINCES: Sequence[tuple[str, str, int, int]] = (
    ("黑龙江", "黑", 0, 6),
    ("内蒙古", "内蒙古", 1, 4),
    ("北京", "京", 1, 5),
    ("吉林", "吉", 1, 6),
    ("新疆", "新", 2, 0),
    ("宁夏", "宁", 2, 3),
    ("山西", "晋", 2, 4),
    ("河北", "冀", 2, 5),
    ("天津", "津", 2, 6),
    ("辽宁", "辽", 2, 7),
    ("青海", "青", 3, 1),
    ("甘肃", "甘", 3, 2),
    ("陕西", "陕", 3, 3),
    ("河南", "豫", 3, 4),
    ("山东", "鲁", 3, 5),
    ("江苏", "苏", 3, 6),
    ("西藏", "藏", 4, 0),
    ("四川", "川", 4, 2),
    ("重庆", "渝", 4, 3),
    ("湖北", "鄂", 4, 4),
    ("安徽", "皖", 4, 5),
    ("上海", "沪", 4, 6),
    ("云南", "云", 5, 2),
    ("贵州", "黔", 5, 3),
    ("湖南", "湘", 5, 4),
    ("江西", "赣", 5, 5),
    ("浙江", "浙", 5, 6),
    ("广西", "桂", 6, 3),
    ("广东", "粤", 6, 4),
    ("福建", "闽", 6, 5),
    ("台湾", "台", 6, 6),
    ("海南", "琼", 7, 4),
    ("香港", "港", 7, 5),
    ("澳门", "澳", 7, 6),
)


def province_of(issuer: str | None, title: str | None, number: str | None) -> str | None:
    """The province a document comes from: named in its issuer or title, or by its 发文字号's
    abbreviation (赣府发 → 江西). None for national documents."""
    for text in (issuer, title):
        if text:
            for name, *_ in PROVINCES:
                if text.startswith(name) or f"{name}省" in text or f"{name}市" in text[:12]:
                    return name
    canonical = number_key(number)
    if canonical:
        for name, abbreviation, *_ in PROVINCES:
            if canonical.startswith(abbreviation) and not canonical.startswith(("国", "中")):
                return name
    return None


def _brief(doc: Document, version: DocumentVersion | None) -> dict[str, Any]:
    return {
        "id": doc.id,
        "title": (version.title if version else None) or doc.title,
        "url": doc.url,
        "status": doc.status,
        "doc_number": doc.doc_number,
        "issuer": version.issuer if version else None,
        "published_at": version.published_at if version else None,
    }


def _grouped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "label": RELATION_LABELS[kind], "incoming": INCOMING_LABELS[kind], "entries": group}
        for kind in RELATION_KINDS
        if (group := [item for item in items if item["kind"] == kind])
    ]


def document_graph(session: Session, document_id: int) -> dict[str, Any]:
    """What the document page shows of the graph: what the current version references (grouped by
    kind; unresolved ones too), what references this document (current versions of the others only),
    its implementations by province, and whether a newer document repeals or amends it."""
    doc = session.get(Document, document_id)
    empty: dict[str, Any] = {
        "references": [],
        "referenced_by": [],
        "implementations": [],
        "provinces": [],
        "repealed_by": [],
        "amended_by": [],
    }
    if doc is None or doc.current_version_id is None:
        return empty
    outgoing = []
    for ref, target in session.execute(
        select(DocumentReference, Document)
        .outerjoin(Document, Document.id == DocumentReference.target_document_id)
        .where(DocumentReference.version_id == doc.current_version_id)
        .order_by(DocumentReference.id)
    ):
        outgoing.append(
            {
                "kind": ref.kind,
                "title": ref.title,
                "doc_number": ref.doc_number,
                "context": ref.context,
                "target": {"id": target.id, "title": target.title, "status": target.status}
                if target
                else None,
                "resolved_by": ref.resolved_by,
            }
        )
    incoming = []
    seen: set[tuple[int, str]] = set()
    for ref, citing, version in session.execute(
        select(DocumentReference, Document, DocumentVersion)
        .join(Document, Document.id == DocumentReference.document_id)
        .join(DocumentVersion, DocumentVersion.id == DocumentReference.version_id)
        .where(
            DocumentReference.target_document_id == document_id,
            DocumentReference.version_id == Document.current_version_id,
        )
        .order_by(DocumentVersion.published_at.desc(), Document.id)
    ):
        if (citing.id, ref.kind) in seen:
            continue
        seen.add((citing.id, ref.kind))
        item = _brief(citing, version)
        item.update(
            kind=ref.kind,
            context=ref.context,
            province=province_of(version.issuer, version.title, citing.doc_number),
        )
        incoming.append(item)
    implementations = [i for i in incoming if i["kind"] == "implements"]
    by_province: dict[str, list[dict[str, Any]]] = {}
    for item in implementations:
        if item["province"]:
            by_province.setdefault(item["province"], []).append(item)
    return {
        "references": _grouped(outgoing),
        "referenced_by": _grouped(incoming),
        "implementations": implementations,
        "provinces": [
            {"name": name, "row": row, "col": col, "documents": by_province.get(name, [])}
            for name, _abbr, row, col in PROVINCES
        ],
        "repealed_by": [i for i in incoming if i["kind"] == "repeals" and i["status"] != "removed"],
        "amended_by": [i for i in incoming if i["kind"] == "amends"],
    }
