"""HTML page → ExtractedDocument (title, body paragraphs, 发文字号, issuer, date).

One BeautifulSoup(lxml) parse per page. The body comes from, in order:

1. ``content_selector`` (a soupsieve CSS selector, first match)          → method "selector"
2. government CMS containers (#UCAP-CONTENT, .TRS_Editor, ...)           → method "cms"
3. trafilatura main-text extraction, then a longest-text-block fallback  → method "auto"

Page chrome (navigation, breadcrumbs, visit counters, print/close/font-size buttons, share widgets,
related-link sidebars, footers) is removed before the text is taken, and chrome-only lines left
inside the body are dropped, so that two fetches of an unchanged page give the same paragraphs.

This module is the orchestration, where a reader starts: `extract_document` prepares the page
(markup repair, junk tags, metadata tables), chooses the body containers and removes chrome
(extraction.containers), decides the title (extraction.title), reads the body (extraction.blocks)
and cleans its paragraphs (extraction.paragraphs), then takes the metadata (extraction.metadata);
`is_not_found_page` recognises a soft 404 from the raw HTML. The helpers live in those modules and
extraction.elements (tree helpers); every name other code read here before the split is still
importable from here (re-exports among the imports below).
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from .blocks import (
    _block_texts,
    _dedupe,
    _longest_block,
    _trafilatura_paragraphs,
    _unwrap_inline_links,
    attachment_links,
)
from .chrome import _JUNK_TAGS, CMS_CONTAINERS
from .containers import _CHROME_TAGS as _CHROME_TAGS
from .containers import _GENERIC_CONTAINERS as _GENERIC_CONTAINERS
from .containers import _GENERIC_MIN_CHARS as _GENERIC_MIN_CHARS
from .containers import _describe, _remove_chrome, _select_containers
from .content import ExtractedDocument, ExtractionError
from .content import is_attachment_url as is_attachment_url
from .elements import _HIDDEN_STYLE as _HIDDEN_STYLE
from .elements import _decompose_outermost
from .markup import repair_markup
from .metadata import _COMPACT as _COMPACT
from .metadata import (
    _ISSUER_LINE,
    _doc_number,
    _find_meta_tables,
    _first_group,
    _parse_meta_table,
    _published_at,
    _read_metas,
)
from .metadata import _META_TABLE_CORE as _META_TABLE_CORE
from .normalise import fold_whitespace
from .paragraphs import _RELATED_HEADING as _RELATED_HEADING
from .paragraphs import _clean_paragraphs
from .title import _ARTICLE_TOKENS as _ARTICLE_TOKENS
from .title import _COLUMN_NAME_MAX as _COLUMN_NAME_MAX
from .title import _SITE_HEADER_TOKENS as _SITE_HEADER_TOKENS
from .title import _TITLE_TOKENS as _TITLE_TOKENS
from .title import _find_title

# The `NAME as NAME` imports are re-exports. is_attachment_url: tests/test_attachments.py imports it
# from here. The constants: extraction.equivalence keeps copies of these rules (it must not import
# BeautifulSoup) and tests/test_fastpath_noise.py checks them against extraction.document's, so they
# stay reachable here; so do the functions equivalence's comments name (_select_containers,
# _remove_chrome, imported above for extract_document).

__all__ = [
    "CMS_CONTAINERS",
    "ExtractedDocument",
    "ExtractionError",
    "extract_document",
    "is_not_found_page",
]


def extract_document(html: str, url: str, content_selector: str | None = None) -> ExtractedDocument:
    """Extract title, body paragraphs and document metadata from a policy page.

    `url` is used for error messages and given to trafilatura. Raises ExtractionError when no
    body text is found (or `content_selector` matches nothing).
    """
    soup = BeautifulSoup(repair_markup(html), "lxml")
    metas = _read_metas(soup)
    _decompose_outermost(soup.find_all(_JUNK_TAGS))

    table: dict[str, str] = {}
    for table_tag in _find_meta_tables(soup):
        for label, value in _parse_meta_table(table_tag).items():
            table.setdefault(label, value)
        table_tag.decompose()

    # Text for the labelled-metadata fallbacks ("来源：", "发布时间：", "文号："), taken before chrome
    # removal because info lines often sit in toolbars next to counters and print buttons.
    page_text = (soup.body or soup).get_text("\n")

    if content_selector:
        match = soup.select_one(content_selector)
        if match is None:
            raise ExtractionError(f"content selector {content_selector!r} matched nothing in {url}")
        containers, method = [match], "selector"
    else:
        containers, method = _select_containers(soup), "cms"

    attachments = attachment_links(soup, containers, url)
    _remove_chrome(soup, containers)
    title, title_reason = _find_title(soup, metas, table, containers, page_text)

    paragraphs = _clean_paragraphs(
        _dedupe([_block_texts(c) for c in containers]), title, chosen=method == "selector"
    )
    if not paragraphs and method == "selector":
        raise ExtractionError(f"content selector {content_selector!r} matched only empty text in {url}")
    if not paragraphs:
        method = "auto"
        _unwrap_inline_links(soup.body or soup)
        paragraphs = _clean_paragraphs(_trafilatura_paragraphs(str(soup), url), title)
        if not paragraphs:
            paragraphs = _clean_paragraphs(_block_texts(_longest_block(soup.body or soup)), title)
    if not paragraphs:
        raise ExtractionError(f"no body text found in {url}")

    if method == "auto":
        body_reason = "auto (trafilatura, else the longest text block)"
    else:
        body_reason = f"{method} " + ", ".join(_describe(c) for c in containers)
    doc_number = _doc_number(metas, table, page_text, paragraphs, title)
    issuer = (
        table.get("发文机关")
        or table.get("发布机构")
        or metas.get("contentsource")
        or _first_group(_ISSUER_LINE, page_text)
    )
    published_at = _published_at(metas, table, page_text, title)
    return ExtractedDocument(
        title=title,
        paragraphs=tuple(paragraphs),
        doc_number=doc_number,
        issuer=fold_whitespace(issuer) if issuer else None,
        published_at=published_at,
        method=method,
        reasons=(f"title: {title_reason}", f"body: {body_reason}"),
        attachments=attachments,
    )


# ---------------------------------------------------------------------------------------------
# soft 404

_NOT_FOUND = re.compile(
    r"页面不存在|网页不存在|页面未找到|页面找不到|找不到(?:该|您要的|您访问的|您所访问的)?(?:页面|网页)|无法找到(?:该)?页面|"
    r"404\s*not\s*found|error\s*404|404\s*错误|错误\s*404|http\s*404|page\s*not\s*found|"
    r"(?:该|此)?页面已(?:被)?删除|(?:该|此)?(?:信息|文章|内容|稿件|栏目)(?:已(?:被)?(?:撤销|撤回|删除|下线|过期)|不存在)|"
    r"您(?:所)?(?:要)?访问的(?:页面|网页|资源|内容|信息)(?:不存在|已删除|已被删除|已失效|已撤销)|资源不存在|链接已失效",
    re.I,
)
_STRIP_BLOCKS = re.compile(r"<(script|style|noscript|template)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_TITLE_TAG = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)
_NOT_FOUND_MAX_CHARS = 1500
_NOT_FOUND_MAX_CHARS_BY_TITLE = 4000


def is_not_found_page(html: str, title: str | None = None) -> bool:
    """A "soft 404": an error page ("页面不存在", "404 Not Found", "信息已撤销"...) served with status 200.

    Only small pages count: a policy text that mentions 404 or 页面不存在 is not one. `title`, when
    given (e.g. an extracted title), is checked together with the page's own <title>.
    """
    m = _TITLE_TAG.search(html)
    titles = " ".join(t for t in (title, m.group(1) if m else None) if t)
    body = _TAG.sub(" ", _STRIP_BLOCKS.sub(" ", html))
    size = len("".join(body.split()))
    if (
        _NOT_FOUND.search(titles) or titles.strip().startswith("404")
    ) and size <= _NOT_FOUND_MAX_CHARS_BY_TITLE:
        return True
    return size <= _NOT_FOUND_MAX_CHARS and bool(_NOT_FOUND.search(body))
