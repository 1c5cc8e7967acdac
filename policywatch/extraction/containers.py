"""Where the body is and what around it is page chrome: CMS container selection and chrome removal.

`_select_containers` picks the body containers of a page (the first of CMS_CONTAINERS that matches,
outermost matches only, generic ones only with enough text, outside chrome when there is a choice);
`_remove_chrome` then decomposes navigation, breadcrumbs, sidebars, counters, print/share buttons,
footers and hidden elements around them, never a container or its ancestors. The two decisions
belong together: chrome removal protects what selection chose, and both use `_inside_chrome`. The
vocabulary they read (CMS_CONTAINERS, chrome id/class tokens) is extraction.chrome, free of
BeautifulSoup and shared with the page fingerprint: extraction.equivalence replicates both decisions
on lxml's tree, and its copies of `_GENERIC_CONTAINERS`, `_GENERIC_MIN_CHARS` and `_CHROME_TAGS` are
checked against these (through extraction.document) by tests/test_fastpath_noise.py.
"""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag

from .chrome import CMS_CONTAINERS, _is_chrome_by_name
from .elements import _in_article, _is_hidden, _text_len, _tokens

# Generic containers must hold at least this much text to be trusted over trafilatura.
_GENERIC_CONTAINERS = frozenset({".article", "#content", ".content"})
_GENERIC_MIN_CHARS = 30

_CHROME_TAGS = frozenset({"nav", "header", "footer", "aside", "form"})


def _select_containers(soup: BeautifulSoup) -> list[Tag]:
    for selector in CMS_CONTAINERS:
        matches = soup.select(selector)
        if not matches:
            continue
        minimum = _GENERIC_MIN_CHARS if selector in _GENERIC_CONTAINERS else 1
        good = [m for m in matches if _text_len(m) >= minimum]
        # Keep the outermost of nested matches (e.g. .article inside .article).
        ids = {id(m) for m in good}
        good = [m for m in good if not any(id(p) in ids for p in m.parents)]
        if len(good) > 1:
            # e.g. a ".content" inside a sidebar next to the real one.
            outside = [m for m in good if not _inside_chrome(m)]
            good = outside or good
        if good:
            return good
    return []


def _inside_chrome(tag: Tag) -> bool:
    for el in (tag, *tag.parents):
        if el.name in _CHROME_TAGS and el.name != "form":
            return True
        if el.attrs and _is_chrome_by_name(_tokens(el)):
            return True
    return False


def _remove_chrome(soup: BeautifulSoup, containers: list[Tag]) -> None:
    """Decompose navigation/breadcrumb/sidebar/counter/print/share/footer elements, hidden ones too.

    Containers and their ancestors are never removed; an element marked as chrome by its id/class,
    hidden, or a <form> is kept when it holds more than half of the text around it.
    """
    protected: set[int] = set()
    for container in containers:
        protected.add(id(container))
        protected.update(id(p) for p in container.parents)
    container_ids = {id(c) for c in containers}
    root = soup.body or soup
    page_len: int | None = None

    doomed: list[Tag] = []
    doomed_ids: set[int] = set()
    for tag in root.find_all(True):
        if id(tag) in protected:
            continue
        name = tag.name
        by_tag = name in _CHROME_TAGS and not (name == "header" and _in_article(tag))
        hidden = _is_hidden(tag)
        by_name = not by_tag and not hidden and _is_chrome_by_name(_tokens(tag))
        if not (by_tag or hidden or by_name):
            continue
        if any(id(p) in doomed_ids for p in tag.parents):
            continue
        if by_name or hidden or name == "form":
            # A page-wide <form> (ASP.NET), a "printContent" wrapper, a body hidden until a script
            # shows it: kept when it holds more than half of the text around it.
            # Reference text: the enclosing container, else the whole page.
            ref = next((p for p in tag.parents if id(p) in container_ids), None)
            if ref is not None:
                ref_len = _text_len(ref)
            else:
                if page_len is None:
                    page_len = _text_len(root)
                ref_len = page_len
            own = _text_len(tag)
            if own > 200 and own * 2 > ref_len:
                continue
        doomed.append(tag)
        doomed_ids.add(id(tag))
    for tag in doomed:
        tag.decompose()


def _describe(tag: Tag) -> str:
    """div#UCAP-CONTENT.mhide: how a container is named in `ExtractedDocument.reasons`."""
    raw = tag.get("class") or ()
    classes = (raw,) if isinstance(raw, str) else tuple(raw)
    ident = f"#{tag['id']}" if tag.get("id") else ""
    return tag.name + ident + "".join(f".{c}" for c in classes[:3])
