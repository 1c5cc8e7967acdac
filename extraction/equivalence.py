"""Is a refetched page the same document as before, differing only in page chrome?

`chrome_equivalent(old_html, new_html)` compares the two pages' element trees (lxml, in C: about
a millisecond for a 60 KB page, against 10-20 ms for `extract_document`). It answers True only when
every difference lies where `extract_document` could never look:

- inside script/style/... elements (removed before anything is read);
- inside an element that extraction removes as chrome whatever its text is: <nav>, <footer>,
  <aside>, or an element whose id/class marks it as chrome (counter, hits, sidebar, related,
  share...) with at most 200 characters of text on both sides (the limit under which
  `_remove_chrome` never keeps one), holding no body container (#UCAP-CONTENT, .TRS_Editor...).

Everything else (tags, attributes, text, the <head> with its title and metas) must be identical.
Then the new page extracts to the same title and paragraphs as the old one, and the pipeline can
skip extraction for it. Anything unusual (a parse failure, very deep nesting) answers False: the
caller then extracts as usual, so this can only save work, never change a result.
"""

from __future__ import annotations

from lxml import etree

from .document import (
    _JUNK_TAGS,
    _TOKEN_SPLIT,
    _UTILITY_CLASS,
    CMS_CONTAINERS,
    _is_chrome_by_name,
)

__all__ = ["chrome_equivalent"]

_JUNK = frozenset(_JUNK_TAGS)
_CHROME_BY_TAG = frozenset({"nav", "footer", "aside"})
_KEEP_LIMIT = 200  # _remove_chrome keeps a chrome-named element only when its text is longer
_CONTAINER_IDS = frozenset(s[1:].lower() for s in CMS_CONTAINERS if s.startswith("#"))
_CONTAINER_CLASSES = frozenset(s[1:].lower() for s in CMS_CONTAINERS if s.startswith("."))


# libxml2's HTML parser, as extract_document's BeautifulSoup(html, "lxml") uses it, but with plain
# elements (lxml.html's per-element class lookup costs a Python call per element).
_PARSER = etree.HTMLParser()


def _parse(text: str) -> etree._Element | None:
    try:
        root = etree.fromstring(text, _PARSER)
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


def _same(a: etree._Element, b: etree._Element) -> bool:
    """Equal trees, but where they differ inside (or in the text of) a disposable element.

    The disposable test runs only on the elements above a difference: one cheap comparison per
    element otherwise.
    """
    if a.tag != b.tag:
        return False
    if not isinstance(a.tag, str):
        return True  # a comment or processing instruction: never text (its tail is compared)
    if a.tag in _JUNK:
        return True
    if a.attrib != b.attrib:
        return False
    if (
        a.text == b.text
        and len(a) == len(b)
        and all(
            x.tail == y.tail and (_serialised(x) == _serialised(y) or _same(x, y))
            for x, y in zip(a, b, strict=True)
        )
    ):
        return True
    return _disposable(a) and _disposable(b)


def _serialised(el: etree._Element) -> bytes:
    """The subtree as bytes, in C: most subtrees are byte-identical and need no walk."""
    return etree.tostring(el, encoding="utf-8", with_tail=False)


def chrome_equivalent(old_html: str, new_html: str) -> bool:
    """True when `new_html` differs from `old_html` only in page chrome (see the module doc)."""
    if old_html == new_html:
        return True
    old, new = _parse(old_html), _parse(new_html)
    if old is None or new is None:
        return False
    try:
        return _same(old, new)
    except RecursionError:
        return False
