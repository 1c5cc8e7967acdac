"""Markup repairs that make libxml2 see a page the way a browser does, and a check that it did.

libxml2 (lxml, and BeautifulSoup's "lxml" builder on top of it) is not an HTML5 parser. Where real
CMS templates are malformed, it and a browser part ways, and worse, its two modes part ways with
each other: a stray ``</html>`` right after a header include (seen on www.gov.cn) makes lxml's tree
builder drop everything after it, while BeautifulSoup, fed the same parser's events, starts a second
``<html>`` root and keeps the article. Whatever reads a page (extraction, the page fingerprint) first
applies `repair_markup`, so that every reader parses one and the same document:

- ``</html>`` and ``</body>`` end tags are dropped: HTML5 ignores them too (content after them
  goes on into the body);
- a second ``<html>`` or ``<body>`` start tag is dropped: HTML5 merges it into the first.

`content_mass` is a parser-independent measure of how much non-ASCII text a string holds (each
character beyond ASCII adds its UTF-8 length less one). Serialising a parsed tree keeps every text,
comment and attribute, and turns entities into characters, so a tree whose serialisation has less
mass than the markup it came from has lost content somewhere: callers that rely on the tree being
complete (the fast path) must then not trust it.
"""

from __future__ import annotations

import re

__all__ = ["content_mass", "repair_markup"]

_ROOT_END_TAG = re.compile(r"</\s*(?:html|body)\s*>", re.I)
_ROOT_START_TAG = re.compile(r"<(html|body)(?=[\s/>])[^>]*>", re.I)


def repair_markup(html: str) -> str:
    """`html` with the root end tags and any repeated ``<html>`` / ``<body>`` start tags removed."""
    html = _ROOT_END_TAG.sub("", html)
    seen: set[str] = set()

    def first_only(m: re.Match[str]) -> str:
        name = m.group(1).lower()
        if name in seen:
            return ""
        seen.add(name)
        return m.group()

    return _ROOT_START_TAG.sub(first_only, html)


def content_mass(text: str) -> int:
    """Non-ASCII weight of `text`: the UTF-8 length beyond one byte per character."""
    return len(text.encode("utf-8", "surrogatepass")) - len(text)
