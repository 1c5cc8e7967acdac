"""Document identity: the 发文字号 (document number) and the same document at a new address.

A policy document is identified by its 发文字号 and title, not by its URL. Sites move pages (a new
CMS, a new channel), so:

- a fetch whose old URL redirects to a new one keeps the document (storage.store handles that);
- a page at a new URL of the same source with the same 发文字号 and title *is* that document: it
  continues its history (`moved_document`, called by storage.store.record_content);
- when a listing stops showing a known document and shows a new URL with the same title, the new
  URL takes the old one's turn in the cycle (`moved_candidates`, used by the pipeline's planning),
  so the move is found before the old URL could be reported as removed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from extraction import canonical_doc_number, normalise_text, parse_doc_number
from storage.models import Document

# The canonical form canonical_doc_number() produces: 国发〔2021〕29号.
_CANONICAL = re.compile(r"^(?P<prefix>.+?)〔(?P<year>\d{4})〕(?P<serial>\d+)号$")

# Issuer of a number by its prefix (the longest matching prefix wins). Not exhaustive: the common
# issuers of digital-economy policy.
ISSUER_PREFIXES: Mapping[str, str] = {
    "国发": "国务院",
    "国函": "国务院",
    "国令": "国务院",
    "国办发": "国务院办公厅",
    "国办函": "国务院办公厅",
    "中发": "中共中央、国务院",
    "中办发": "中共中央办公厅、国务院办公厅",
    "国数": "国家数据局",
    "发改": "国家发展改革委",
    "工信部": "工业和信息化部",
    "工信厅": "工业和信息化部办公厅",
    "国网办": "国家互联网信息办公室",
    "国信办": "国家互联网信息办公室",
    "商": "商务部",
    "财": "财政部",
    "赣府发": "江西省人民政府",
    "赣府字": "江西省人民政府",
    "赣府厅发": "江西省人民政府办公厅",
    "赣府厅字": "江西省人民政府办公厅",
    "黔府发": "贵州省人民政府",
    "黔府办发": "贵州省人民政府办公厅",
    "黔府办函": "贵州省人民政府办公厅",
    "浙政发": "浙江省人民政府",
    "浙政办发": "浙江省人民政府办公厅",
}


@dataclass(frozen=True)
class DocNumber:
    """A parsed 发文字号."""

    printed: str  # as the page prints it: 国办函(2024)第3号
    prefix: str  # issuer abbreviation and document type: 国办函
    year: int
    serial: int

    @property
    def canonical(self) -> str:
        """国办函〔2024〕3号: one spelling for every bracket form, width and 第."""
        return f"{self.prefix}〔{self.year}〕{self.serial}号"

    @property
    def issuer(self) -> str | None:
        return issuer_of_prefix(self.prefix)


def parse_number(text: str | None) -> DocNumber | None:
    """The first 发文字号 in `text`, in any bracket form (〔〕 [] 【】 () （） ［］ ﹝﹞), with or without 第,
    full-width digits included."""
    if not text:
        return None
    printed = parse_doc_number(text)
    if printed is None:
        # Full-width digits in the year ("〔２０２１〕") are not matched as printed; NFKC makes them ASCII.
        printed = parse_doc_number(unicodedata.normalize("NFKC", text))
    if printed is None:
        return None
    m = _CANONICAL.match(canonical_doc_number(unicodedata.normalize("NFKC", printed)))
    if m is None:
        return None
    return DocNumber(printed, m.group("prefix"), int(m.group("year")), int(m.group("serial")))


def number_key(text: str | None) -> str | None:
    """The canonical 发文字号 in `text`, or None."""
    number = parse_number(text)
    return number.canonical if number else None


def issuer_of_prefix(prefix: str) -> str | None:
    """国办函 -> 国务院办公厅; 工信部联规 -> 工业和信息化部; None when unknown."""
    best = None
    for known, issuer in ISSUER_PREFIXES.items():
        if prefix.startswith(known) and (best is None or len(known) > len(best[0])):
            best = (known, issuer)
    return best[1] if best else None


def title_key(title: str | None) -> str:
    """Comparison form of a title: normalised, without spaces or quotation marks."""
    return re.sub(r"[\s\"'《》“”‘’「」]", "", normalise_text(title or ""))


def same_identity(
    number_a: str | None, title_a: str | None, number_b: str | None, title_b: str | None
) -> bool:
    """Same 发文字号 (in any form) and same title: one document. Without a number there is no identity."""
    key_a, key_b = number_key(number_a), number_key(number_b)
    return key_a is not None and key_a == key_b and title_key(title_a) == title_key(title_b) != ""


class _Content(Protocol):
    title: str
    doc_number: str | None


def moved_document(session: Session, source_id: str, content: _Content) -> Document | None:
    """The document of `source_id` with this page's 发文字号 and title, if there is one.

    Called for a page at a URL no document has: when it matches, the page is that document at a
    new address (the caller moves it there). The oldest matching document wins.
    """
    number = parse_number(content.doc_number)
    if number is None or not title_key(content.title):
        return None
    # The printed form varies (brackets, widths, 第): narrow in SQL by the year and the serial (a
    # year alone matched most of a source's documents: a cold crawl was quadratic), decide in Python.
    candidates = session.scalars(
        select(Document)
        .where(
            Document.source_id == source_id,
            Document.doc_number.is_not(None),
            Document.doc_number.contains(str(number.year)),
            Document.doc_number.contains(str(number.serial)),
        )
        .order_by(Document.id)
    )
    for doc in candidates:
        if same_identity(doc.doc_number, doc.title, number.printed, content.title):
            return doc
    return None


# --- planning: a known document whose listing entry moved to a new URL ----------------------------

_ELLIPSIS = re.compile(r"(?:\.{3}|…+|\.\.)$")
MIN_TRUNCATED_TITLE = 10


class _Listed(Protocol):
    url: str
    title: str | None


def _titles_match(listed: str, document: str) -> bool:
    """A listing title is the document's title, or its start when the listing cut it ("…")."""
    listed_key, document_key = title_key(listed), title_key(document)
    if not listed_key or not document_key:
        return False
    if listed_key == document_key:
        return True
    stripped = _ELLIPSIS.sub("", listed.strip())
    if stripped != listed.strip():
        prefix = title_key(stripped)
        return len(prefix) >= MIN_TRUNCATED_TITLE and document_key.startswith(prefix)
    return False


def moved_candidates(
    session: Session,
    source_id: str,
    listed: Sequence[_Listed],
    known_urls: Mapping[str, int],
    new_urls: Iterable[str],
) -> dict[int, str]:
    """Known documents that the listing no longer shows, each with the new URL that shows its title.

    `known_urls` maps every URL of the source's documents to the document id. A pairing is made
    only when it is unambiguous (one unlisted document and one new URL with that title); the fetch
    then decides (`moved_document`: same 发文字号 and title), so a wrong guess costs nothing but
    checking the old URL one cycle later.
    """
    listed_urls = {link.url for link in listed}
    fresh = set(new_urls)
    if not fresh:
        return {}
    titles = {link.url: link.title for link in listed if link.url in fresh and link.title}
    if not titles:
        return {}
    still_listed = {doc_id for url, doc_id in known_urls.items() if url in listed_urls}
    unlisted = set(known_urls.values()) - still_listed
    if not unlisted:
        return {}
    # All the source's active documents, filtered here: an IN list of thousands of ids would hit
    # SQLite's limit on bound parameters.
    rows = session.execute(
        select(Document.id, Document.title).where(
            Document.source_id == source_id, Document.status == "active"
        )
    ).all()
    pairs: dict[int, list[str]] = {}
    claimed: dict[str, list[int]] = {}
    for doc_id, doc_title in rows:
        if doc_id not in unlisted:
            continue
        for url, listed_title in titles.items():
            if doc_title and _titles_match(listed_title, doc_title):
                pairs.setdefault(doc_id, []).append(url)
                claimed.setdefault(url, []).append(doc_id)
    return {
        doc_id: urls[0] for doc_id, urls in pairs.items() if len(urls) == 1 and len(claimed[urls[0]]) == 1
    }
