"""Is a refetched page the page the current version was read from, for extraction? Fingerprints.

(About 620 lines in one module on purpose: it replicates extraction's decisions one by one on lxml's
tree, and the replica is only trustworthy read side by side as one piece; the extraction it mirrors
is extraction.document with containers.py, title.py and blocks.py.)

The pipeline keeps, with a document, the fingerprint of the page its current version was read from,
and takes a refetched page with the same fingerprint as that version seen again, without extracting
it. A fingerprint is a hash of evidence: same evidence must mean the same title and paragraphs, and
it should not move with what extraction never reads. Two plans, learned from the extraction itself
(`learned_fingerprint`, stored as "<plan>:<hash>" in the String(64) column):

- "c<level>" (evidence: what extraction reads). For a page whose body came from a CMS container,
  this module reads the page as `extraction.document.extract_document` does, decision for decision,
  on lxml's tree (in C where it can: about 2 ms for a 60 KB page against 10-20 ms for extraction):
  the metas it reads (ArticleTitle, og:title), script/style/... dropped, the metadata tables, the
  container choice (CMS_CONTAINERS in order, outermost, outside chrome), chrome removal (with its
  text-length rules), then the title candidates it would offer. The hash covers the outcome of each
  decision and exactly the text it then reads: which containers were chosen and their text and
  structure after chrome removal; the metadata tables; the headings offered as titles (kind, text,
  before the body or not: a heading in a list, a link, a box of links, the site header, chrome or
  hidden is never offered, so a reordered sidebar is no evidence); <title>; which pieces of <title>
  and og:title the page text holds (extraction cuts a column name off a title when the page shows it
  elsewhere). Everything else (other elements, attribute order and values, scripts, nonces, forms,
  counters, ads, footers) is not evidence. The plan is kept only when this reading chose the
  containers extraction chose (its `reasons` name them), so a page the two read differently never
  gets it.
- "w" (the whole page). For everything else (trafilatura, which reads the whole page; a container
  choice the two readings disagree on): the page's element tree with only what extraction always
  removes blanked: script/style/... content and comments, and elements that are chrome whatever
  their text (<nav>, <footer>, <aside>, or an id/class marking chrome with at most 200 characters
  of text, holding no body container).

Both read the page after `extraction.markup.repair_markup` (malformed roots, which libxml2's tree
builder and BeautifulSoup resolve differently), and a tree that holds less text than the markup
(`content_mass`: libxml2 dropped something it could not place) gives no fingerprint: the caller
then extracts as usual, so this can only save work, never change a result. `FINGERPRINT_VERSION`
(from EXTRACTOR_REVISION) is part of every hash: an extractor change makes every stored fingerprint
stale (each page is extracted once more), and so does a change of this module's format.
tests/test_fastpath_realpages.py checks the promise on real saved pages with malformed-HTML
corruptions, tests/test_fastpath_noise.py that ordinary noise keeps real pages on the fast path.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lxml import etree

from .chrome import (
    _JUNK_TAGS,
    _TOKEN_SPLIT,
    _UTILITY_CLASS,
    CMS_CONTAINERS,
    _is_chrome_by_name,
)
from .content import ATTACHMENT_EXTENSIONS, EXTRACTOR_REVISION, ExtractionError
from .markup import content_mass, repair_markup
from .normalise import fold_whitespace

if TYPE_CHECKING:
    from .content import ExtractedDocument

__all__ = [
    "FINGERPRINT_VERSION",
    "WHOLE_PAGE",
    "chrome_equivalent",
    "fingerprint_like",
    "learned_fingerprint",
    "page_fingerprint",
    "whole_page_fingerprint",
]

# Part of every fingerprint: any change of the extractor (EXTRACTOR_REVISION) or of the fingerprint
# itself (the suffix) makes every stored fingerprint stale, so each page is read in full once more.
FINGERPRINT_VERSION = f"pw-fp3-x{EXTRACTOR_REVISION}".encode()

_JUNK = frozenset(_JUNK_TAGS)
_CHROME_BY_TAG = frozenset({"nav", "footer", "aside"})
_KEEP_LIMIT = 200  # _remove_chrome keeps a chrome-named element only when its text is longer
_CONTAINER_IDS = frozenset(s[1:].lower() for s in CMS_CONTAINERS if s.startswith("#"))
_CONTAINER_CLASSES = frozenset(s[1:].lower() for s in CMS_CONTAINERS if s.startswith("."))


# libxml2's HTML parser, as extract_document's BeautifulSoup(html, "lxml") uses it, but with plain
# elements (lxml.html's per-element class lookup costs a Python call per element). One per thread:
# the observe stage fingerprints pages on several threads, and an lxml parser must not be shared.
_PARSERS = threading.local()


def _parse(text: str) -> etree._Element | None:
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        # huge_tree: old CMS pages nest unclosed <font>s past libxml2's default 256 levels.
        parser = _PARSERS.parser = etree.HTMLParser(huge_tree=True)
    try:
        root = etree.fromstring(text, parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    return root


def _tokens(el: etree._Element) -> list[str]:
    classes = [c for c in (el.get("class") or "").split() if not _UTILITY_CLASS.match(c)]
    names = [el.get("id") or "", *classes]
    return [t.lower() for t in _TOKEN_SPLIT.split(" ".join(names)) if t]


@functools.lru_cache(maxsize=4096)
def _chrome_named(ident: str, classes: str) -> bool:
    """_is_chrome_by_name of an element's tokens, by its id and class (templates repeat them)."""
    names = [ident, *(c for c in classes.split() if not _UTILITY_CLASS.match(c))]
    return _is_chrome_by_name([t.lower() for t in _TOKEN_SPLIT.split(" ".join(names)) if t])


def _text_len(el: etree._Element, stop: int | None = None) -> int:
    """Extraction's _text_len (characters of the stripped strings, spaces not counted), exactly:
    the evidence plan takes its decisions with it. With `stop`: counting ends once it is reached
    (a threshold test needs no more)."""
    total = 0
    for piece in el.itertext():
        stripped = piece.strip()
        total += len(stripped) - stripped.count(" ")
        if stop is not None and total >= stop:
            break
    return total


def _holds_container(el: etree._Element) -> bool:
    for node in el.iter():
        if not isinstance(node.tag, str):
            continue
        if (node.get("id") or "").lower() in _CONTAINER_IDS:
            return True
        if _CONTAINER_CLASSES.intersection(c.lower() for c in (node.get("class") or "").split()):
            return True
    return False


def _disposable(el: etree._Element) -> bool:
    """Extraction removes `el` with everything in it, whatever text it holds (within the limit)."""
    if el.tag in _CHROME_BY_TAG:
        return not _holds_container(el)
    if not (el.get("id") or el.get("class")) or not _chrome_named(el.get("id") or "", el.get("class") or ""):
        return False
    return _text_len(el) <= _KEEP_LIMIT and not _holds_container(el)


def _attached(el: etree._Element, root: etree._Element) -> bool:
    """`el` is still in the tree (not inside an element blanked before it)."""
    while True:
        parent = el.getparent()
        if parent is None:
            return el is root
        el = parent


def _blank(el: etree._Element, *, keep_attributes: bool = True) -> None:
    """Drop what `el` holds (text and children), keeping its tag, its tail and maybe its attributes."""
    el.text = None
    for child in list(el):
        el.remove(child)
    if not keep_attributes:
        el.attrib.clear()


_CHROME_CANDIDATES = etree.XPath("//*[@id or @class] | //nav | //footer | //aside")


def whole_page_fingerprint(html: str) -> str | None:
    """The "w" plan: the whole page hashed with only always-removed chrome blanked (module doc);
    None when it cannot be parsed or the parsed tree is not the whole page."""
    root = _complete_tree(html)
    if root is None:
        return None
    try:
        # Chrome first, outermost first (document order): an element's text is measured before
        # anything inside it is blanked.
        for el in _CHROME_CANDIDATES(root):
            if _attached(el, root) and _disposable(el):
                _blank(el)
        # script/style/...: extraction drops them whatever their attributes and content; comments
        # and processing instructions are never text. Their tails are text and stay.
        for el in list(root.iter(etree.Comment, etree.ProcessingInstruction, *_JUNK)):
            if el.tag in _JUNK:
                _blank(el, keep_attributes=False)
            else:
                el.text = ""
        data = etree.tostring(root, encoding="utf-8")
    except (RecursionError, ValueError):
        return None
    return WHOLE_PAGE + hashlib.blake2b(data, digest_size=16, person=FINGERPRINT_VERSION).hexdigest()


# --- the "c" plan: the evidence extraction reads ------------------------------------------------------
#
# Copies of extraction.document's constants (which imports BeautifulSoup, kept out of unchanged
# cycles): tests/test_fastpath_noise.py (test_the_replica_constants_are_extractions) fails when the
# two drift apart.
_META_TABLE_CORE = (
    "索引号",
    "主题分类",
    "发文机关",
    "成文日期",
    "标题",
    "发文字号",
    "发布日期",
    "公开事项名称",
    "主办单位",
    "制发日期",
    "发文日期",
    "生成日期",
    "信息名称",
)
_RELATED_HEADING = re.compile(
    r"^\s*[【\[]?\s*(?:相关(?:阅读|链接|文章|新闻|文件|稿件|导读|政策|解读|推荐|报道|资讯)|排行榜|热点(?:政策|新闻|推荐)?|"
    r"热门(?:文章|新闻|推荐)?|推荐阅读|延伸阅读|猜你喜欢|最新(?:文章|新闻|政策|发布)|点击排行|阅读排行|"
    r"频道推荐|精彩推荐|专题推荐|往期回顾|为(?:你|您)推荐|相关推荐|今日推荐|编辑推荐|热门推荐|更多(?:新闻|文章|精彩))\s*[】\]]?\s*[:：]?\s*$"
)
_TITLE_TOKENS = re.compile(r"title|biaoti|bt$|tit$", re.I)
_GENERIC_CONTAINERS = frozenset({".article", "#content", ".content"})
_GENERIC_MIN_CHARS = 30
_CHROME_TAGS = frozenset({"nav", "header", "footer", "aside", "form"})
_SITE_HEADER_TOKENS = frozenset({"header", "head", "top", "topbar", "logo", "banner", "nav", "menu"})
_ARTICLE_TOKENS = frozenset(
    {"article", "detail", "content", "main", "news", "con", "text", "title", "zw", "wz"}
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_COMPACT = re.compile(r"[\s:：]+")
# Where a <title> / og:title may be cut ("标题-政策文件", "首页 › 政策 › 标题"): every piece between two
# of these is a suffix extraction may test against the page text.
_TITLE_PIECES = re.compile(r"[-–—_|｜›»]|\s+>\s+")
_COLUMN_NAME_MAX = 12

_REMOVED = "pw-removed"  # the tag of an element extraction decomposes (see _remove)
WHOLE_PAGE = "w:"  # prefix of a whole-page fingerprint; an evidence fingerprint starts "c<level>:"

_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


def _lower(attr: str) -> str:
    return f"translate({attr}, '{_UPPER}', '{_LOWER}')"


# Prefilters in C (XPath); the exact test of each hit is in Python. Each is a superset of what
# extraction's own test accepts, matched case-insensitively (soupsieve's case rules aside).
_CONTAINER_XPATHS = tuple(
    etree.XPath(f"//*[contains({_lower('@id' if s[0] == '#' else '@class')}, '{s[1:].lower()}')]")
    for s in CMS_CONTAINERS
)
_CHROME_XPATH = etree.XPath(
    "descendant::*[@id or @class or @hidden or @style] | descendant::nav | descendant::header"
    " | descendant::footer | descendant::aside | descendant::form"
)
_HEADING_XPATH = etree.XPath(
    "//h1 | //h2 | //h3 | //*[(@id or @class) and (contains({0}, 'tit') or contains({0}, 'bt')"
    " or contains({0}, 'biaoti'))]".format(_lower("concat(@id, ' ', @class)"))
)
_ATTRIBUTE_NAMES = etree.XPath("descendant-or-self::*/@*")


def _matches(el: etree._Element, selector: str) -> bool:
    name = selector[1:].lower()
    if selector[0] == "#":
        return (el.get("id") or "").lower() == name
    return name in (c.lower() for c in (el.get("class") or "").split())


def _hidden(el: etree._Element) -> bool:
    if el.get("hidden") is not None:
        return True
    style = el.get("style")
    return bool(style) and bool(_HIDDEN_STYLE.search(style))


def _in_article(el: etree._Element) -> bool:
    return any(p.tag in ("article", "main") for p in el.iterancestors())


def _inside_chrome(el: etree._Element) -> bool:
    for node in (el, *el.iterancestors()):
        if node.tag in _CHROME_TAGS and node.tag != "form":
            return True
        if len(node.attrib) and _chrome_named(node.get("id") or "", node.get("class") or ""):
            return True
    return False


def _site_header(el: etree._Element) -> bool:
    for parent in el.iterancestors():
        if parent.tag in ("nav", "footer", "aside"):
            return True
        if parent.tag == "header" and not _in_article(parent):
            return True
        if len(parent.attrib):
            tokens = set(_tokens(parent))
            if tokens & _SITE_HEADER_TOKENS and not tokens & _ARTICLE_TOKENS:
                return True
    return bool(len(el.attrib)) and any(t in ("logo", "banner") for t in _tokens(el))


def _links(el: etree._Element, limit: int) -> list[etree._Element]:
    out = []
    for a in el.iter("a"):
        if a.get("href") is not None:
            out.append(a)
            if len(out) == limit:
                break
    return out


def _in_list_or_link(el: etree._Element) -> bool:
    if any(p.tag in ("li", "a", "dt", "dd", "option") for p in el.iterancestors()):
        return True
    link = next(iter(_links(el, 1)), None)
    if link is not None and (twice := _text_len(link) * 2) > _text_len(el, stop=twice):
        return True
    if _RELATED_HEADING.match(fold_whitespace("".join(el.itertext()))):
        return True
    box = el.getparent()
    if box is None or box.tag in ("body", "html"):
        return False
    links = _links(box, 50)
    if len(links) < 2:
        return False
    twice = sum(_text_len(a) for a in links) * 2
    return twice > _text_len(box, stop=twice)


def _describe(el: etree._Element) -> str:
    """As extraction names a container in ExtractedDocument.reasons ("div#UCAP-CONTENT.mhide")."""
    ident = f"#{el.get('id')}" if el.get("id") else ""
    return el.tag + ident + "".join(f".{c}" for c in (el.get("class") or "").split()[:3])


def _structure(el: etree._Element) -> str:
    """`el`'s tags and text, its attributes dropped (in place: the caller is done with them)."""
    names = {a.attrname for a in _ATTRIBUTE_NAMES(el)}
    if names:
        etree.strip_attributes(el, *names)
    return etree.tostring(el, encoding="unicode", with_tail=False)


def _remove(el: etree._Element, removed: set[etree._Element]) -> None:
    """Extraction decomposes `el`: its text, children and attributes go, its tail stays (a separate
    string, as in BeautifulSoup, so that text measures stay the same). Renamed, so that it reads as
    nothing to every later test (no link, no cell, no block) and never hashes like an element that
    is really there and empty (an empty <div> still ends a paragraph; a decomposed one does not)."""
    _blank(el, keep_attributes=False)
    el.tag = _REMOVED
    removed.add(el)


@dataclass(frozen=True)
class _Reading:
    fingerprint: str  # "c<level>:" + hash of the evidence
    body_reason: str  # the containers as ExtractedDocument.reasons names them ("body: cms ...")


def _select_containers(
    root: etree._Element, removed: set[etree._Element]
) -> tuple[int, list[etree._Element], list[etree._Element]]:
    """policywatch.extraction.document._select_containers on this tree: (level, chosen, every match at that level)."""
    for level, selector in enumerate(CMS_CONTAINERS):
        matches = [m for m in _CONTAINER_XPATHS[level](root) if m not in removed and _matches(m, selector)]
        if not matches:
            continue
        minimum = _GENERIC_MIN_CHARS if selector in _GENERIC_CONTAINERS else 1
        good = [m for m in matches if _text_len(m, stop=minimum) >= minimum]
        kept = set(good)
        good = [m for m in good if not any(p in kept for p in m.iterancestors())]
        if len(good) > 1:
            good = [m for m in good if not _inside_chrome(m)] or good
        if good:
            return level, good, matches
    return -1, [], []


def _remove_chrome(top: etree._Element, chosen: list[etree._Element], removed: set[etree._Element]) -> None:
    """policywatch.extraction.document._remove_chrome on this tree, decision for decision."""
    protected = set(chosen)
    for container in chosen:
        protected.update(container.iterancestors())
    containers = set(chosen)
    page_len: int | None = None
    doomed: list[etree._Element] = []
    doomed_set: set[etree._Element] = set()
    for el in _CHROME_XPATH(top):
        if el in protected or el in removed:
            continue
        name = el.tag
        by_tag = name in _CHROME_TAGS and not (name == "header" and _in_article(el))
        hidden = _hidden(el)
        by_name = not by_tag and not hidden and _chrome_named(el.get("id") or "", el.get("class") or "")
        if not (by_tag or hidden or by_name):
            continue
        if any(p in doomed_set for p in el.iterancestors()):
            continue
        if by_name or hidden or name == "form":
            # Kept when it holds more than _KEEP_LIMIT characters and half the text around it (the
            # enclosing container, else the page); measured only when the first part holds.
            own = _text_len(el)
            if own > _KEEP_LIMIT:
                ref = next((p for p in el.iterancestors() if p in containers), None)
                if ref is not None:
                    ref_len = _text_len(ref, stop=own * 2)
                else:
                    if page_len is None:
                        page_len = _text_len(top)
                    ref_len = page_len
                if own * 2 > ref_len:
                    continue
        doomed.append(el)
        doomed_set.add(el)
    for el in doomed:
        _remove(el, removed)


def _starts_before(a: etree._Element, b: etree._Element) -> bool:
    """`a` starts before `b` in document order (extraction's _precedes: `b` is among the elements
    after `a`'s start, its descendants included)."""
    a_line = [a, *a.iterancestors()]
    if b in a_line:
        return False  # b encloses a: it started first
    below = {id(node): child for child, node in itertools.pairwise(a_line)}
    child_b = b
    for node in b.iterancestors():
        if node is a:
            return True  # a encloses b
        if id(node) in below:
            return node.index(below[id(node)]) < node.index(child_b)
        child_b = node
    return False


def _title_candidates(
    root: etree._Element, first_body: etree._Element, removed: set[etree._Element]
) -> list[tuple[str, str, bool]]:
    """The headings extraction's _find_title offers (kind, text, before the body), in page order:
    a heading it never offers (in a list, a link, a box of links, the site header, chrome, hidden,
    a chapter heading inside the body) is no evidence, so a reordered sidebar is invisible."""
    out = []
    for el in _HEADING_XPATH(root):
        if el in removed:
            continue
        name = el.tag
        if name in ("h1", "h2", "h3"):
            kind = name
        elif (
            len(el.attrib)
            and name not in ("a", "li", "ul", "ol", "body", "html", "meta", "img")
            and any(_TITLE_TOKENS.search(t) for t in _tokens(el))
        ):
            kind = "title element"
        else:
            continue
        if _site_header(el) or _in_list_or_link(el) or _hidden(el) or _inside_chrome(el):
            continue
        if kind != "h1" and any(p is first_body for p in el.iterancestors()):
            continue
        out.append((kind, fold_whitespace("".join(el.itertext())), _starts_before(el, first_body)))
    return out


def _suffix_evidence(title: str, page_text: str) -> list[tuple[str, bool]]:
    """Which pieces of a <title> / og:title the page text holds: extraction cuts a column name off a
    title when the page shows it elsewhere (_strip_site_suffix), so that answer is evidence."""
    out = []
    for piece in _TITLE_PIECES.split(fold_whitespace(title)):
        piece = piece.strip()
        if 2 <= len(piece) <= _COLUMN_NAME_MAX and not any(ch.isdigit() for ch in piece):
            out.append((piece, piece in page_text))
    return out


def _labels_in(text: str) -> int:
    return sum(label in text for label in _META_TABLE_CORE)


def _evidence(root: etree._Element) -> _Reading | None:
    """Read the tree as extract_document reads it (metas, junk, metadata tables, containers, chrome,
    title candidates) and hash what decides its title and paragraphs. None: no CMS container."""
    if next(root.iter("rt", "rp"), None) is not None:
        # BeautifulSoup leaves ruby annotations out of get_text() but not out of the paragraphs:
        # rare enough on policy pages to leave them to the whole-page plan.
        return None
    parts: list[object] = []
    metas: dict[str, str] = {}
    for meta in root.iter("meta"):
        key, content = meta.get("name") or meta.get("property") or meta.get("itemprop"), meta.get("content")
        if key and content and (value := fold_whitespace(content)):
            metas.setdefault(key.strip().lower(), value)
    parts.append(("metas", metas.get("articletitle"), metas.get("og:title")))
    removed: set[etree._Element] = set()
    for el in list(root.iter(etree.Comment, etree.ProcessingInstruction, *_JUNK)):
        if el.tag in _JUNK:
            _remove(el, removed)
        else:
            el.text = ""
    tables = [t for t in root.iter("table") if _labels_in(_COMPACT.sub("", "".join(t.itertext()))) >= 3]
    found = set(tables)
    for table in [t for t in tables if not any(d in found for d in t.iterdescendants("table"))]:
        parts.append(("table", _structure(table)))  # _parse_meta_table reads cells and text only
        _remove(table, removed)
    top = next(root.iter("body"), None)
    top = root if top is None else top
    page_text = "\n".join(top.itertext())
    level, chosen, matches = _select_containers(root, removed)
    if not chosen:
        return None
    body_reason = "cms " + ", ".join(_describe(c) for c in chosen)
    parts.append(("containers", level, len(matches), [matches.index(c) for c in chosen], body_reason))
    # The attachments extraction lists (附件: file links in the body, or labelled anywhere): every
    # file link of the page, in order, a superset, so a file added or replaced is never skipped.
    parts.append(("files", [(a.get("href"), "".join(a.itertext())) for a in root.iter("a") if _file_link(a)]))
    _remove_chrome(top, chosen, removed)
    parts.append(("headings", _title_candidates(root, chosen[0], removed)))
    title_el = next((t for t in root.iter("title") if t not in removed), None)
    page_title = "".join(title_el.itertext()) if title_el is not None else ""
    parts.append(("title", page_title))
    for title in (page_title, metas.get("og:title") or ""):
        parts.append(("suffixes", _suffix_evidence(title, page_text)))
    # The containers' text and structure after chrome removal: what _block_texts reads. Their
    # attributes played their part in the decisions above and are left out (ids, styles, data-*).
    parts.extend(_structure(container) for container in chosen)
    data = "\x00".join(map(repr, parts)).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=16, person=FINGERPRINT_VERSION).hexdigest()
    return _Reading(f"c{level}:{digest}", body_reason)


def _file_link(a: etree._Element) -> bool:
    href = (a.get("href") or "").strip()
    lowered = href.lower()
    if not any(ext in lowered for ext in ATTACHMENT_EXTENSIONS):
        return False  # a path ending in an extension holds it (most links hold none: no parse)
    try:
        return urlsplit(href).path.lower().endswith(ATTACHMENT_EXTENSIONS)
    except ValueError:
        return False


def _complete_tree(html: str) -> etree._Element | None:
    """The page parsed as extraction parses it, or None when the tree lost some of its text."""
    html = repair_markup(html)
    root = _parse(html)
    if root is None:
        return None
    try:
        # A tree that holds less text than the markup lost some of it (libxml2 drops what it cannot
        # place): what it lost could be the very text that changed, so no fingerprint.
        if content_mass(etree.tostring(root, encoding="unicode")) < content_mass(html):
            return None
    except (RecursionError, ValueError):
        return None
    return root


# The last page read on this thread: the observe stage asks for a page's fingerprint and then, when
# it reads the page in full, for the one to store; one parse serves both.
_LAST = threading.local()


def _reading(html: str) -> _Reading | None:
    last = getattr(_LAST, "entry", None)
    if last is not None and last[0] is html:
        return last[1]
    reading = None
    root = _complete_tree(html)
    if root is not None:
        try:
            reading = _evidence(root)
        except (RecursionError, ValueError):
            reading = None
    _LAST.entry = (html, reading)
    return reading


def page_fingerprint(html: str) -> str | None:
    """The page's evidence fingerprint ("c…") when it has a CMS container, else its whole-page one
    ("w:…"); None when the page cannot be trusted to be read the same way twice."""
    reading = _reading(html)
    return reading.fingerprint if reading is not None else whole_page_fingerprint(html)


def fingerprint_like(html: str, stored: str | None, computed: str | None) -> str | None:
    """The page's fingerprint under the plan `stored` was made with (`computed`: page_fingerprint(html))."""
    stored_whole = stored is not None and stored.startswith(WHOLE_PAGE)
    if stored_whole and computed is not None and not computed.startswith(WHOLE_PAGE):
        return whole_page_fingerprint(html)
    return computed


def learned_fingerprint(html: str, extracted: ExtractedDocument) -> str | None:
    """The fingerprint to keep with the version `extracted` was read from `html`.

    The evidence plan only when this module's reading of the page chose the containers extraction
    chose (its reasons say which); otherwise (trafilatura, a container the two see differently) the
    whole page is the evidence."""
    reading = _reading(html)
    if (
        reading is not None
        and extracted.method == "cms"
        and f"body: {reading.body_reason}" in extracted.reasons
    ):
        return reading.fingerprint
    return whole_page_fingerprint(html)


def chrome_equivalent(old_html: str, new_html: str) -> bool:
    """True when the pipeline, having read `old_html` in full, would take `new_html` as the same
    page without reading it (the fingerprint it learned from `old_html` is `new_html`'s)."""
    if old_html == new_html:
        return True
    from .document import extract_document  # BeautifulSoup: only callers that compare whole pages

    try:
        stored = learned_fingerprint(old_html, extract_document(old_html, ""))
    except ExtractionError:
        stored = whole_page_fingerprint(old_html)
    if stored is None:
        return False
    return fingerprint_like(new_html, stored, page_fingerprint(new_html)) == stored
