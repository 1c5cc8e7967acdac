"""The body as paragraphs, and the files it links to.

`_block_texts` reads a container as paragraphs (one per block element, <br>-separated line or data
table row) and `_dedupe` joins several containers' paragraphs, a container whose text another holds
counted once. When no container gives text, the "auto" path takes over: `_unwrap_inline_links`
prepares the page, `_trafilatura_paragraphs` reads it, and `_longest_block` is the last resort.
`attachment_links` lists the files (附件) the body links to; extraction.document calls it before
chrome removal (extraction.containers), the paragraph readers after it. The paragraphs these give
are then cleaned (extraction.paragraphs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

from .content import is_attachment_url
from .elements import _text_len
from .normalise import fold_whitespace, normalise_paragraphs

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "legend",
        "li",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_HEADINGS_AND_BLOCKS = ["p", "div", "li", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"]


_FLUSH = object()


def _block_texts(root: Tag) -> list[str]:
    """Paragraphs of `root`: one per block element / <br>-separated line / table row; whitespace folded."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            text = fold_whitespace("".join(buf))
            buf.clear()
            if text:
                out.append(text)

    stack: list[object] = [iter(root.contents)]
    while stack:
        top = stack[-1]
        if top is _FLUSH:
            stack.pop()
            flush()
            continue
        node = next(top, None)  # type: ignore[call-overload]
        if node is None:
            stack.pop()
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, CDATA, doctype...
                buf.append(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if name == "br":
            flush()
        elif name == "tr" and _is_data_row(node):
            flush()
            cells = (" ".join(_block_texts(cell)) for cell in node.find_all(("td", "th"), recursive=False))
            row = fold_whitespace(" ".join(cells))
            if row:
                out.append(row)
        elif name in _BLOCK_TAGS:
            flush()
            stack.append(_FLUSH)
            stack.append(iter(node.contents))
        elif name != "img":
            stack.append(iter(node.contents))
    flush()
    return out


def _is_data_row(tr: Tag) -> bool:
    """A table row of data (cells joined into one paragraph), not a layout row holding the page."""
    cells = tr.find_all(("td", "th"), recursive=False)
    if len(cells) < 2:
        return False
    return all(
        cell.find("table") is None and len(cell.find_all(_HEADINGS_AND_BLOCKS, limit=4)) <= 3
        for cell in cells
    )


_KEYWORD_LINK_CLASSES = frozenset({"infokey", "keytip", "keyword", "key-word", "stock-link"})


def _unwrap_inline_links(root: Tag) -> None:
    """Turn links inside running text into plain text before trafilatura sees the page.

    Finance sites inject stock-keyword links (`<span id="Info.3271"><a class="infokey">重组</a>`)
    into reposted policy text; trafilatura's link-density filter then drops short paragraphs
    such as a chapter heading that happens to contain two keywords.
    """
    mostly_text: dict[int, bool] = {}
    for a in root.find_all("a"):
        classes = a.get("class") or ()
        if not set(classes) & _KEYWORD_LINK_CLASSES:
            block = next((p for p in a.parents if p.name in _BLOCK_TAGS), None)
            if block is None or block.name not in ("p", "td", "dd", "blockquote"):
                continue
            key = id(block)
            if key not in mostly_text:
                link_len = sum(_text_len(x) for x in block.find_all("a"))
                mostly_text[key] = link_len * 2 <= _text_len(block)
            if not mostly_text[key]:
                continue
        a.unwrap()


def _trafilatura_paragraphs(html: str, url: str) -> list[str]:
    import trafilatura  # imported lazily: only the "auto" path needs it

    text = trafilatura.extract(
        html,
        url=url or None,
        favor_precision=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        include_formatting=False,
        deduplicate=False,
        with_metadata=False,
    )
    if not text:
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.rstrip().endswith("|"):
            line = " ".join(c.strip() for c in line.strip().strip("|").split("|"))
        line = fold_whitespace(line)
        if line:
            out.append(line)
    return out


_TEXTY_CHILDREN = frozenset(
    {"p", "span", "font", "strong", "b", "em", "i", "u", "h2", "h3", "h4", "h5", "h6", "pre"}
)


def _longest_block(root: Tag) -> Tag:
    """The element with the most text in its own text nodes and paragraph-like children."""
    best, best_score = root, 0
    for tag in root.find_all(("div", "td", "article", "section", "main", "body", "blockquote")):
        score = 0
        for child in tag.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, PreformattedString):
                    score += len(child.strip())
            elif isinstance(child, Tag) and child.name in _TEXTY_CHILDREN:
                score += _text_len(child)
        if score > best_score:
            best, best_score = tag, score
    return best


def _dedupe(blocks: list[list[str]]) -> list[str]:
    """Concatenate the paragraphs of several containers; a container whose text another holds counts once."""
    if len(blocks) == 1:
        return blocks[0]
    keyed = [("\n".join(normalise_paragraphs(b)), i) for i, b in enumerate(blocks)]
    keyed = [k for k in keyed if k[0]]
    kept: list[tuple[str, int]] = []
    for key, i in sorted(keyed, key=lambda k: -len(k[0])):
        if not any(key in other for other, _ in kept):
            kept.append((key, i))
    out: list[str] = []
    for _, i in sorted(kept, key=lambda k: k[1]):
        out.extend(blocks[i])
    return out


# ---------------------------------------------------------------------------------------------
# attachments

_ATTACHMENT_LABEL = re.compile(r"附件|附表|下载")


def attachment_links(
    soup: BeautifulSoup, containers: Iterable[Tag], base_url: str
) -> tuple[tuple[str, str], ...]:
    """Links to files in the body containers, and anywhere on the page when labelled 附件 (some
    templates print the attachment list just after the body): absolute URL and link text, in
    page order, each once. http(s) only."""
    found: dict[str, str] = {}

    def take(link: Tag, *, labelled: bool) -> None:
        href = str(link.get("href") or "").strip()
        if not href or href.startswith(("javascript:", "mailto:", "#")):
            return
        url = urljoin(base_url, href)
        if urlsplit(url).scheme not in ("http", "https") or not is_attachment_url(url):
            return
        text = fold_whitespace(link.get_text(" "))
        if labelled and not (_ATTACHMENT_LABEL.search(text) or _ATTACHMENT_LABEL.search(_nearby_text(link))):
            return
        found.setdefault(url.split("#", 1)[0], text)

    for container in containers:
        for link in container.find_all("a", href=True):
            take(link, labelled=False)
    for link in soup.find_all("a", href=True):
        take(link, labelled=True)
    return tuple(found.items())


def _nearby_text(link: Tag) -> str:
    parent = link.parent
    return parent.get_text(" ")[:200] if isinstance(parent, Tag) else ""
