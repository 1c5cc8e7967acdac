"""Document identity: the 发文字号 (document number) and the same document at a new address.

A policy document is identified by its 发文字号 and title, or by the redirect its old address now
answers with, not by its URL. Sites move pages (a new CMS, a new channel); CONTRACT.md: a document
whose old URL redirects to a new one, or that reappears at a new URL with the same 发文字号 and
title, keeps its id and history, and a move is not an event. The evidence, strongest first:

- **The redirect.** A fetch of a known document's URL that ends at another URL moves the document
  there (storage.store.record_content). This needs no pairing and no 发文字号: it is the only
  evidence for documents without one. It only works if the old URL is fetched, and its answer is
  taken, *before* the new URL is recorded as a document of its own (a new URL recorded first
  becomes a `new` or, its text being known, a `republished` document, and alerts go out). The
  pipeline guarantees that order, whatever order the fetches complete in:
  - a cycle checks the known documents first and the discovered URLs that are still nobody's
    after them (pipeline.run_source; in Airflow, the new-URL batches run after the known ones), so
    a redirect the listing does not show (or shows under another link text) moves the document
    before its new URL is looked at;
  - when the listing stops showing a known document and shows a new URL with its title
    (`moved_candidates`), both are checked in the known documents' turn as one *pair*: the old
    URL (the document's own target) and the new URL (a target carrying the document's id). The
    pipeline's processor waits for both answers, in whatever order they come, and decides with
    `pair_verdict`, in one unit of the version stage:
    - the old URL redirects to the new one → the document moved: the new URL's own (unconditional)
      answer is recorded as the document's page (no event; `changed` if the text differs; never
      `new` or `republished`);
    - the old URL is gone (404/410, a not-found page, a redirect to the home page) → the new page
      is recorded first, and is the document when its 发文字号 and title say so (no `removed`
      then), else the document is removed; if the new page could not be read, the removal waits
      for the next cycle;
    - the old URL failed before any redirect (timeout, 5xx) → the new URL waits for the next
      cycle unless its 发文字号 and title already prove it is the document;
    - the old URL still answers → the new URL is processed as any new URL.
  `fetch_attempts` logs the answer that was not used as the document's page as `moved`, and a
  decision left for the next cycle as `deferred`.
- **The same 发文字号 and title** at a new URL of the same source (`moved_document`, the
  `same_document` of storage.store.record_content): that document, moved. Without a 发文字号 there
  is no such identity: the same text at a new URL while the old one is gone (404) and does not
  redirect is a repost (`republished`) of a removed document, as the contract reads.
- **A deep page that redirects to the site's home page is a removal, not a move**
  (`redirected_home`): sites send withdrawn pages to `/` or `/index.html`. A newly listed link that
  does so is a stale link (a source error), not a document.

Why pairs. Planning used to give the new URL the old one's turn *instead of* the old URL: the
redirect, the only evidence without a 发文字号, was never asked for, and the new URL became a
`republished` copy of its own document. Deciding later instead (when a new URL's text or title
equals a known document's, fetch that document's old URL to see whether it redirects) would put a
request inside the version stage's transaction (SQLite's write lock held across a politeness
delay) or come after the `new`/`republished` event and its alerts, which cannot be taken back. A
pair costs one request more per *paired* move only, made by the observe stage like any other: a
genuinely new document is fetched once and no old URL is re-checked for it. The halves may answer
in any order, from any thread or worker process. Airflow's batches never split a pair (the plan
puts pairs first, at even positions); a batch that holds only the new URL of one treats it as
above when the old URL "failed": recorded only if it already is the document's URL or its 发文字号
and title prove it, otherwise left for the next cycle.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from policywatch.extraction import canonical_doc_number, normalise_text, parse_doc_number
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
    @property
    def title(self) -> str: ...

    @property
    def doc_number(self) -> str | None: ...


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
    @property
    def url(self) -> str: ...

    @property
    def title(self) -> str | None: ...


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
    only when it is unambiguous (one unlisted document and one new URL with that title); both URLs
    are then fetched and their answers decide (`pair_verdict`: the old URL's redirect, else
    `moved_document`'s 发文字号 and title), so a wrong guess costs one request.
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


# --- the evidence of a fetch: a redirect to the new URL, or to the home page ---------------------------

# Paths of a site's home page (compared in lower case, without a query): a deep page redirected to
# one of these was withdrawn, not moved.
HOME_PATHS = frozenset(
    {
        "/",
        "/index",
        "/index.html",
        "/index.htm",
        "/index.shtml",
        "/index.jsp",
        "/index.php",
        "/index.asp",
        "/index.aspx",
        "/default.html",
        "/default.htm",
        "/default.asp",
        "/default.aspx",
        "/home",
        "/home.html",
    }
)


def is_home_page(url: str) -> bool:
    """A site's home page: `/`, `/index.html` and the like, without a query (any host)."""
    parts = urlsplit(url)
    return not parts.query and (parts.path or "/").lower() in HOME_PATHS


def redirected_home(url: str, final_url: str, redirects: Sequence[str]) -> bool:
    """A deep page whose fetch was redirected to a home page: the page is gone (CONTRACT.md)."""
    return bool(redirects) and is_home_page(final_url) and not is_home_page(url)


class _Fetch(Protocol):
    final_url: str
    error: str | None
    redirects: list[str]


MOVED = "moved"  # the old URL redirects to the new one: the new URL is the document
GONE = "gone"  # the old URL is not found (or redirects to the home page): the new page decides
UNKNOWN = "unknown"  # the old URL failed before any redirect: nothing can be concluded this cycle
STAYS = "stays"  # the old URL still answers on its own: the new URL is any new URL


def pair_verdict(old_url: str, old: _Fetch, old_not_found: bool, new_url: str, new: _Fetch) -> str:
    """What the answers of a known document's URL and of the new URL that took its place in the
    listing say about a move (see the module docstring). `old_not_found`: 404/410 or a not-found
    page at the end of the old URL's redirects."""
    if redirected_home(old_url, old.final_url, old.redirects) or old_not_found:
        return GONE
    if old.redirects and old.final_url in (new_url, new.final_url):
        return MOVED  # even if the last hop then failed: the new URL's own answer has the page
    if old.error:
        return UNKNOWN
    return STAYS
