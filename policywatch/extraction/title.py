"""The title decision: a ranked choice among a page's title candidates, and why it won.

`_find_title` offers every candidate (meta ArticleTitle, the metadata table's 标题, <h1>-<h3> and
elements whose id/class says title, og:title, <title>), skips headings that belong to a list, a
link, the site header, chrome or (but an <h1>) the body, ranks the rest (agreeing with <title>,
coming before the body) and cleans the winner (breadcrumbs, 【】, the site's or a column's name
after a separator).
One decision with its ranks and cleaning rules, read best in one piece. extraction.equivalence
offers the same candidates on lxml's tree for the page fingerprint; its copies of `_TITLE_TOKENS`,
`_SITE_HEADER_TOKENS`, `_ARTICLE_TOKENS` and `_COLUMN_NAME_MAX` mirror these (`_TITLE_TOKENS` is
checked through extraction.document by tests/test_fastpath_noise.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bs4 import BeautifulSoup, Tag

from .containers import _inside_chrome
from .elements import _in_article, _is_hidden, _text_len, _tokens
from .normalise import fold_whitespace, normalise_text
from .paragraphs import _RELATED_HEADING

# Ancestors that disqualify an <h1>/.title as the article title (a site logo or banner).
_SITE_HEADER_TOKENS = frozenset({"header", "head", "top", "topbar", "logo", "banner", "nav", "menu"})
# ...unless the same element is also marked as the article's own header ("article-header").
_ARTICLE_TOKENS = frozenset(
    {"article", "detail", "content", "main", "news", "con", "text", "title", "zw", "wz"}
)


_TITLE_SEPARATOR = re.compile(r"\s*(?:[_|｜]|\s[-–—]+\s|[-–—]{1,2})\s*(?=[^_|｜\-–—]*$)")
_SITE_SUFFIX = re.compile(
    r"(?:网|网站|门户|官网|政府|人民政府|办公厅|办公室|委员会|部|委|厅|局|署|院|中心|平台|频道|专栏|栏目|首页|"
    r"[A-Za-z]+\.(?:cn|com|net|org))$"
)


_COLUMN_NAME_MAX = 12


def _strip_site_suffix(title: str, page_text: str = "") -> str:
    """ "国务院关于…的通知 _ 中国政府网" → "国务院关于…的通知"; "(2021-2023年)" is left alone.

    A suffix after a single dash is also the site's or a column's name when the page shows it
    elsewhere (breadcrumb, navigation: `page_text`): "关于…的通知-政策文件". A subtitle after "——" is
    part of the title.
    """
    title = fold_whitespace(title)
    for _ in range(3):
        m = _TITLE_SEPARATOR.search(title)
        if m is None or m.start() == 0:
            break
        head, suffix = title[: m.start()], title[m.end() :]
        sep = m.group().strip()
        named_elsewhere = (
            sep in ("-", "–", "—")
            and 2 <= len(suffix) <= _COLUMN_NAME_MAX
            and not any(ch.isdigit() for ch in suffix)
            and suffix in page_text
        )
        if sep in ("_", "|", "｜") or _SITE_SUFFIX.search(suffix) or not suffix or named_elsewhere:
            title = head.strip()
        else:
            break
    return title


def _is_site_header(tag: Tag) -> bool:
    for parent in tag.parents:
        if parent.name in ("nav", "footer", "aside"):
            return True
        if parent.name == "header" and not _in_article(parent):
            return True
        if parent.attrs:
            tokens = set(_tokens(parent))
            if tokens & _SITE_HEADER_TOKENS and not tokens & _ARTICLE_TOKENS:
                return True
    return bool(tag.attrs) and any(t in ("logo", "banner") for t in _tokens(tag))


_TITLE_TOKENS = re.compile(r"title|biaoti|bt$|tit$", re.I)
# "首页 > 政策 > 标题", "首页›政策›标题": a bare ">" inside text ("<script>", "a>b") is no separator.
_BREADCRUMB_SPLIT = re.compile(r"\s+>\s+|\s*[›»]\s*")
_CRUMB_MAX = 20
_TITLE_MIN, _TITLE_MAX = 4, 200
# Base rank of each kind of title candidate; a heading that agrees with <title> gains _AGREES, one
# that comes before the body gains _BEFORE_BODY.
_RANK = {"meta ArticleTitle": 100, "metadata table": 95, "h1": 60, "title element": 55, "h2": 45}
_RANK.update({"h3": 35, "og:title": 40, "<title>": 30})
_AGREES, _BEFORE_BODY, _DISAGREES = 25, 10, 40


def _clean_title(text: str, *, site_suffix: bool, page_text: str = "") -> str:
    """Breadcrumb trail, 【】 wrapping and (`site_suffix`) the site's name removed:
    "首页 > 政策 > 标题-中国政府网" → "标题"."""
    text = fold_whitespace(text)
    parts = [p for p in _BREADCRUMB_SPLIT.split(text) if p]
    if len(parts) > 1 and len(parts[-1]) >= 6 and all(len(p) <= _CRUMB_MAX for p in parts[:-1]):
        text = parts[-1]
    if site_suffix:
        text = _strip_site_suffix(text, page_text)
    if text.startswith("【") and text.endswith("】"):
        text = text[1:-1].strip()
    return text


def _agrees(candidate: str, page_title: str) -> bool:
    """The page's <title> holds the candidate (or the other way round, with most of it)."""
    a, b = normalise_text(candidate), normalise_text(page_title)
    if not a or not b:
        return False
    short, long_ = sorted((a, b), key=len)
    return short in long_ and len(short) * 2 >= len(long_) // 2


def _in_list_or_link(tag: Tag) -> bool:
    """Inside a list item or a link, a heading that is itself a link, or the heading of a box of
    links ("相关新闻" over a list of headlines): the title of other articles, or of a list of them."""
    if any(p.name in ("li", "a", "dt", "dd", "option") for p in tag.parents):
        return True
    link = tag.find("a", href=True)
    if link is not None and _text_len(link) * 2 > _text_len(tag):
        return True
    if _RELATED_HEADING.match(fold_whitespace(tag.get_text())):
        return True
    box = tag.parent
    if box is None or box.name in ("body", "html", "[document]"):
        return False
    links = box.find_all("a", href=True, limit=50)
    return len(links) >= 2 and sum(_text_len(a) for a in links) * 2 > _text_len(box)


def _heading_candidates(soup: BeautifulSoup) -> Iterable[tuple[str, Tag]]:
    for tag in soup.find_all(True):
        name = tag.name
        if name in ("h1", "h2", "h3"):
            yield name, tag
        elif (
            tag.attrs
            and name not in ("a", "li", "ul", "ol", "body", "html", "meta", "img")
            and any(_TITLE_TOKENS.search(t) for t in _tokens(tag))
        ):
            yield "title element", tag


def _find_title(
    soup: BeautifulSoup,
    metas: dict[str, str],
    table: dict[str, str],
    containers: list[Tag],
    page_text: str = "",
) -> tuple[str, str]:
    """The title and why it won: a ranked choice among the page's title candidates.

    Article metadata (meta ArticleTitle, the metadata table's 标题) beats a heading, and a heading
    beats og:title and <title>. A heading in a list item, a link, the site header or page chrome
    never counts (a list of other articles must not lend its first headline, and reordering it must
    not change the title); a heading that agrees with <title>, or comes before the body, ranks
    higher; ties go to the earliest. Breadcrumbs and site suffixes are removed.
    """
    page_title = soup.title.get_text() if soup.title is not None else ""
    # A <title> that names a document, not just the site: a heading that disagrees with it is more
    # likely a section or list heading than the article's.
    named = _clean_title(page_title, site_suffix=True, page_text=page_text)
    specific_title = len(named) >= 10 and not _SITE_SUFFIX.search(named)
    scored: list[tuple[int, int, str, str]] = []  # (-rank, order, title, reason)

    def offer(kind: str, text: str | None, order: int, bonus: int = 0, why: str = "") -> None:
        # Only a <title> carries the site's name after the document's ("标题_中国政府网").
        title = _clean_title(text or "", site_suffix=kind in ("<title>", "og:title"), page_text=page_text)
        if _TITLE_MIN <= len(title) <= _TITLE_MAX:
            scored.append((-(_RANK[kind] + bonus), order, title, kind + why))

    offer("meta ArticleTitle", metas.get("articletitle"), 0)
    offer("metadata table", table.get("标题") or table.get("公开事项名称") or table.get("信息名称"), 0)
    first_body = containers[0] if containers else None
    for order, (kind, tag) in enumerate(_heading_candidates(soup), start=1):
        if _is_site_header(tag) or _in_list_or_link(tag) or _is_hidden(tag) or _inside_chrome(tag):
            continue
        if first_body is not None and any(p is first_body for p in tag.parents) and kind != "h1":
            continue  # a heading inside the body is a chapter heading, not the title
        text = fold_whitespace(tag.get_text())
        bonus, why = 0, ""
        if page_title and _agrees(_clean_title(text, site_suffix=False), page_title):
            bonus, why = bonus + _AGREES, why + ", agrees with <title>"
        elif specific_title:
            bonus, why = bonus - _DISAGREES, why + ", disagrees with <title>"
        if first_body is not None and _precedes(tag, first_body):
            bonus, why = bonus + _BEFORE_BODY, why + ", before the body"
        offer(kind, text, order, bonus, why)
    offer("og:title", metas.get("og:title"), 10**6)
    offer("<title>", page_title, 10**6 + 1)
    if not scored:
        return "", "none"
    _, _, title, reason = min(scored)
    return title, reason


def _precedes(tag: Tag, other: Tag) -> bool:
    """`tag` comes before `other` in document order (and is not inside it)."""
    return any(el is other for el in tag.next_elements)
