"""What extraction asks of a BeautifulSoup element: its id/class tokens, whether it is hidden, how
much text it holds, whether it sits in an <article>; and how to decompose a set of elements safely.

Small tree helpers that container selection and chrome removal (extraction.containers), the title
decision (extraction.title), the body blocks (extraction.blocks) and page preparation
(extraction.document) all use: kept in one place so that none of those imports another just for a
helper. extraction.equivalence reads the same rules on lxml's tree; its copy of `_HIDDEN_STYLE` is
checked against this one (through extraction.document) by tests/test_fastpath_noise.py.
"""

from __future__ import annotations

import re

from bs4 import Tag

from .chrome import _TOKEN_SPLIT, _UTILITY_CLASS

_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def _tokens(tag: Tag) -> list[str]:
    attrs = tag.attrs
    if not attrs:
        return []
    raw = attrs.get("class") or ()
    classes = (raw,) if isinstance(raw, str) else tuple(raw)
    ident = attrs.get("id") or ""
    names = [
        ident if isinstance(ident, str) else " ".join(ident),
        *(c for c in classes if not _UTILITY_CLASS.match(c)),
    ]
    return [t.lower() for t in _TOKEN_SPLIT.split(" ".join(names)) if t]


def _is_hidden(tag: Tag) -> bool:
    attrs = tag.attrs
    if not attrs:
        return False
    if "hidden" in attrs:
        return True
    style = attrs.get("style")  # never multi-valued (BeautifulSoup splits class, rel, ... only)
    return isinstance(style, str) and bool(style) and bool(_HIDDEN_STYLE.search(style))


def _text_len(tag: Tag) -> int:
    return sum(len(s) - s.count(" ") for s in tag.stripped_strings)


def _in_article(tag: Tag) -> bool:
    return any(p.name in ("article", "main") for p in tag.parents)


def _decompose_outermost(tags: list[Tag]) -> None:
    """Decompose `tags` (in document order), skipping those inside one already removed.

    (bs4 clears a decomposed subtree, so its descendants must not be touched afterwards.)
    """
    removed: set[int] = set()
    for tag in tags:
        if any(id(p) in removed for p in tag.parents):
            continue
        removed.add(id(tag))
    for tag in tags:
        if id(tag) in removed:
            tag.decompose()
