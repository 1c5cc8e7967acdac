"""Is a refetched page the same document as before, differing only in page chrome?

`page_fingerprint(html)` hashes the page's element tree (lxml, in C: about a millisecond for a
60 KB page, against 10-20 ms for `extract_document`) with everything `extract_document` could never
look at blanked out:

- the content of script/style/... elements (removed before anything is read), and of comments;
- the content of an element that extraction removes as chrome whatever its text is: <nav>,
  <footer>, <aside>, or an element whose id/class marks it as chrome (counter, hits, sidebar,
  related, share...) with at most 200 characters of text (the limit under which `_remove_chrome`
  never keeps one), holding no body container (#UCAP-CONTENT, .TRS_Editor...).

Everything else (tags, attributes, text, the <head> with its title and metas) is hashed as it is.
Two pages with one fingerprint extract to the same title and paragraphs, so the pipeline keeps the
fingerprint of the page its current version was read from and skips extraction for a refetched page
with the same one: no stored page to load, one parse.

That only holds if the fingerprint reads the same document as extraction. Both read the page after
`extraction.markup.repair_markup` (malformed roots, which libxml2's tree builder and BeautifulSoup
resolve differently), and a tree that holds less text than the markup (`content_mass`: libxml2
dropped something it could not place) gives no fingerprint. Anything unusual (a parse failure, very
deep nesting, lost content) gives None: the caller then extracts as usual, so this can only save
work, never change a result. `FINGERPRINT_VERSION` (from EXTRACTOR_REVISION) is part of the hash:
every extractor change makes every stored fingerprint stale (each page is extracted once more).
tests/test_fastpath_realpages.py checks the promise on real saved pages with malformed-HTML
corruptions.
"""

from __future__ import annotations

import hashlib
import threading

from lxml import etree

from .chrome import (
    _JUNK_TAGS,
    _TOKEN_SPLIT,
    _UTILITY_CLASS,
    CMS_CONTAINERS,
    _is_chrome_by_name,
)
from .content import EXTRACTOR_REVISION
from .markup import content_mass, repair_markup

__all__ = ["FINGERPRINT_VERSION", "chrome_equivalent", "page_fingerprint"]

# Part of every fingerprint: any change of the extractor (EXTRACTOR_REVISION) or of the fingerprint
# itself (the suffix) makes every stored fingerprint stale, so each page is read in full once more.
FINGERPRINT_VERSION = f"pw-fp2-x{EXTRACTOR_REVISION}".encode()

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


def _text_len(el: etree._Element) -> int:
    """At least what extraction's _text_len counts (more is only more careful)."""
    total = 0
    for piece in el.itertext():
        stripped = piece.strip()
        total += len(stripped) - stripped.count(" ")
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
    if not (el.get("id") or el.get("class")) or not _is_chrome_by_name(_tokens(el)):
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


def page_fingerprint(html: str) -> str | None:
    """Hash of the page as extraction sees it (see the module doc); None when it cannot be parsed
    or the parsed tree is not the whole page."""
    html = repair_markup(html)
    root = _parse(html)
    if root is None:
        return None
    try:
        # A tree that holds less text than the markup lost some of it (libxml2 drops what it cannot
        # place): what it lost could be the very text that changed, so no fingerprint.
        if content_mass(etree.tostring(root, encoding="unicode")) < content_mass(html):
            return None
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
    return hashlib.blake2b(data, digest_size=16, person=FINGERPRINT_VERSION).hexdigest()


def chrome_equivalent(old_html: str, new_html: str) -> bool:
    """True when `new_html` differs from `old_html` only in page chrome (see the module doc)."""
    if old_html == new_html:
        return True
    old = page_fingerprint(old_html)
    return old is not None and old == page_fingerprint(new_html)
