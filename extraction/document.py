"""HTML page → ExtractedDocument (title, body paragraphs, 发文字号, issuer, date).

One BeautifulSoup(lxml) parse per page. The body comes from, in order:

1. ``content_selector`` (a soupsieve CSS selector, first match)          → method "selector"
2. government CMS containers (#UCAP-CONTENT, .TRS_Editor, ...)           → method "cms"
3. trafilatura main-text extraction, then a longest-text-block fallback  → method "auto"

Page chrome (navigation, breadcrumbs, visit counters, print/close/font-size buttons, share widgets,
related-link sidebars, footers) is removed before the text is taken, and chrome-only lines left
inside the body are dropped, so that two fetches of an unchanged page give the same paragraphs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

from .chrome import (
    _JUNK_TAGS,
    _TOKEN_SPLIT,
    _UTILITY_CLASS,
    CMS_CONTAINERS,
    _is_chrome_by_name,
)
from .content import ExtractedDocument, ExtractionError, is_attachment_url
from .docmeta import parse_date, parse_doc_number
from .markup import repair_markup
from .normalise import fold_whitespace, normalise_paragraphs, normalise_text

__all__ = [
    "CMS_CONTAINERS",
    "ExtractedDocument",
    "ExtractionError",
    "extract_document",
    "is_not_found_page",
]


# Generic containers must hold at least this much text to be trusted over trafilatura.
_GENERIC_CONTAINERS = frozenset({".article", "#content", ".content"})
_GENERIC_MIN_CHARS = 30

_CHROME_TAGS = frozenset({"nav", "header", "footer", "aside", "form"})

# Ancestors that disqualify an <h1>/.title as the article title (a site logo or banner).
_SITE_HEADER_TOKENS = frozenset({"header", "head", "top", "topbar", "logo", "banner", "nav", "menu"})
# ...unless the same element is also marked as the article's own header ("article-header").
_ARTICLE_TOKENS = frozenset(
    {"article", "detail", "content", "main", "news", "con", "text", "title", "zw", "wz"}
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)

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

# ---------------------------------------------------------------------------------------------
# chrome lines inside the body

# Chrome that is unambiguous wherever it appears: removed from any paragraph.
_CHROME_SCRUB = re.compile(
    r"""
    (?:浏览次数|访问次数|阅读次数|点击次数|浏览量|访问量|阅读量|点击量|点击数|点击率)\s*[:：]\s*\d+\s*次?
  | [【\[]\s*(?:字体|字号)\s*[:：]?\s*(?:[【\[]?\s*(?:大|中|小|默认|标准|超大)\s*[】\]]?\s*)+[】\]]
  | (?:字体|字号)\s*[:：]\s*(?:[【\[]?\s*(?:大|中|小|默认|标准|超大)\s*[】\]]?\s*){2,}
  | [【\[]\s*(?:打印本页|打印此页|打印文章|打印|关闭本页|关闭窗口|关闭|收藏本页|收藏|加入收藏|保存本页|保存|
              返回顶部|回到顶部|返回首页|返回列表|返回|纠错|我要纠错)\s*[】\]]
  | 扫一扫在手机(?:上)?(?:打开|查看)当前(?:页|页面)
  """,
    re.VERBOSE,
)
# Words that are chrome when a line consists of nothing else.
_CHROME_WORDS = re.compile(
    r"""
    打印本页|打印此页|打印文章|打印文档|打印页面|打印正文|打印|关闭本页|关闭窗口|关闭|收藏本页|加入收藏|收藏|
    保存本页|保存|返回顶部|回到顶部|返回[^\s|｜/]{0,12}|纠错|我要纠错|上一篇|下一篇|举报|关注|点赞|在看|
    上一页|下一页|首页|尾页|末页|
    (?:浏览次数|访问次数|阅读次数|点击次数|浏览量|访问量|阅读量|点击量|点击数|浏览|阅读|点击)\s*[:：]?\s*\d*\s*次?|
    (?:字体|字号)\s*[:：]?|(?<![\u4e00-\u9fff])[大中小](?![\u4e00-\u9fff])|
    分享到|分享|微信|朋友圈|新浪微博|腾讯微博|微博|QQ空间|QQ好友|人人网|豆瓣|
    [Tt]op|[Pp]rint|[Cc]lose
    """,
    re.VERBOSE,
)
_CHROME_LEFTOVER = re.compile(r"[\s|｜/·•:：,，、.。\-_>»【】\[\]()（）<《》]*")
_BREADCRUMB_LINE = re.compile(
    r"^\s*(?:您?(?:当前)?所在(?:的)?位置|当前(?:的)?位置|您现在的位置|您的位置|现在位置)\s*[:：]"
)
# A breadcrumb trail without a label: "首页 > 政策 > 国务院文件".
_CRUMB_TRAIL = re.compile(r"^\s*(?:首页|网站首页|主页|首 页)\s*[>»›/]")
# Links to the neighbouring articles: they change whenever the site publishes something.
_NEIGHBOUR_LINE = re.compile(r"^\s*[【\[]?\s*(?:上一篇|下一篇|上一条|下一条|上篇|下篇)\s*[】\]]?\s*[:：]")
_INFO_LABELS = (
    "发布时间|发布日期|发文日期|更新时间|更新日期|时间|日期|信息来源|文章来源|稿件来源|来源|"
    "作者|责任编辑|编辑|发布机构|发布人|审核|校对"
)
_INFO_LABEL = re.compile(rf"(?:{_INFO_LABELS})\s*[:：]")
_DATE_ONLY = re.compile(
    r"^\s*(?:19|20)\d{2}\s*(?:[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,2}|年\s*\d{1,2}\s*月\s*\d{1,2}\s*日)"
    r"(?:\s*\d{1,2}\s*[:：]\s*\d{1,2}(?:\s*[:：]\s*\d{1,2})?)?\s*$"
)


# Site footers and platform notices: never policy text, wherever a template puts them.
_FOOTER_LINE = re.compile(
    r"版权所有|ICP\s*备|ICP证|公网安备|网站标识码|网站地图|联系我们|建议使用.{0,20}浏览器|分辨率.{0,10}浏览|"
    r"^\s*[【\[]?\s*免责声明\s*[】\]:：]|"
    r"^\s*(?:责任编辑|编辑|校对|审核)\s*[:：].{0,20}$",
    re.I,
)
# Headings of lists of other articles: the heading and the headlines under it are not the article.
_RELATED_HEADING = re.compile(
    r"^\s*[【\[]?\s*(?:相关(?:阅读|链接|文章|新闻|文件|稿件|导读|政策|解读|推荐|报道|资讯)|排行榜|热点(?:政策|新闻|推荐)?|"
    r"热门(?:文章|新闻|推荐)?|推荐阅读|延伸阅读|猜你喜欢|最新(?:文章|新闻|政策|发布)|点击排行|阅读排行|"
    r"频道推荐|精彩推荐|专题推荐|往期回顾|为(?:你|您)推荐|相关推荐|今日推荐|编辑推荐|热门推荐|更多(?:新闻|文章|精彩))\s*[】\]]?\s*[:：]?\s*$"
)
# Under a related-list heading: headlines, their one-line summaries and dates, not prose.
_HEADLINE_MAX = 120
# Disclaimers and promotions that finance and news portals print under the article.
_DISCLAIMER = re.compile(r"^\s*[【\[]?\s*(?:免责)?声明\s*[】\]]?\s*[:：]")
_DISCLAIMER_WORDS = re.compile(
    r"仅供参考|不构成.{0,6}(?:建议|要约)|风险自担|不代表本(?:网|站|平台)|观点|转载|版权"
)
_PROMO_LINE = re.compile(
    r"^\s*(?:进入|点击进入|欢迎进入|点击查看|下载|打开)\s*.{0,24}(?:讨论|客户端|APP|App|查看更多)\s*$"
)
_PAGER_LINE = re.compile(
    r"^(?=.*(?:页|Next|Prev))(?:\s*(?:[<«‹]+|[>»›]+|首页|上一页|下一页|尾页|末页|共\s*\d+\s*页|第\s*\d+\s*页|"
    r"\d{1,4}|…|\.\.\.|Next|Prev)\s*)+$",
    re.I,
)
# The caption row above a metadata table ("目录项的基本信息").
_META_CAPTION = re.compile(r"^\s*(?:目录项的)?(?:基本信息|信息索引|文件信息)\s*$")


_LEADING_DATETIME = re.compile(
    r"^\s*(?:19|20)\d{2}\s*(?:[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,2}|年\s*\d{1,2}\s*月\s*\d{1,2}\s*日)"
    r"\s*(?:\d{1,2}\s*[:：]\s*\d{1,2}(?:\s*[:：]\s*\d{1,2})?)?\s*"
)


def _is_info_line(text: str) -> bool:
    """ "发布时间：2022-05-26 10:00 来源：xx办公室" – a line of labelled page metadata only (also
    when it starts with the date: "2019-09-26 12:11来源：证券时报网作者：李在山")."""
    if len(text) > 120:
        return False
    stripped = text.strip().strip("()（）[]【】")
    dated = _LEADING_DATETIME.match(stripped)
    if dated and dated.end() < len(stripped) and _INFO_LABEL.match(stripped, dated.end()):
        stripped = stripped[dated.end() :]
    matches = list(_INFO_LABEL.finditer(stripped))
    if not matches or matches[0].start() != 0:
        return False
    for i, m in enumerate(matches):
        label = m.group().rstrip(":：").strip()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(stripped)
        value = stripped[m.end() : end].strip()
        # "时间：2022年6月1日至6月30日" in an event notice is content, not page metadata.
        if label in ("时间", "日期") and not _DATE_ONLY.match(value):
            return False
    return True


def _clean_paragraph(text: str) -> str:
    """Display text of a body paragraph with chrome removed; "" when the line is chrome only."""
    if len(text) < 150 and (
        _BREADCRUMB_LINE.match(text)
        or _CRUMB_TRAIL.match(text)
        or _NEIGHBOUR_LINE.match(text)
        or _FOOTER_LINE.search(text)
        or _PAGER_LINE.match(text)
        or _META_CAPTION.match(text)
    ):
        return ""
    if len(text) < 400 and (
        text.lstrip().startswith(("【免责声明】", "免责声明：", "免责声明:", "[免责声明]"))
        or (_DISCLAIMER.match(text) and _DISCLAIMER_WORDS.search(text))
    ):
        return ""
    if _PROMO_LINE.match(text):
        return ""
    scrubbed = _CHROME_SCRUB.sub(" ", text)
    if scrubbed != text:
        text = fold_whitespace(scrubbed)
    if not text:
        return ""
    if len(text) <= 80 and not _CHROME_LEFTOVER.sub("", _CHROME_WORDS.sub("", text)):
        return ""
    if _is_info_line(text):
        return ""
    return text


def _without_related_lists(paragraphs: list[str]) -> list[str]:
    """Drop a "相关阅读 / 排行榜 / 热点政策" heading and the short headlines that follow it."""
    out: list[str] = []
    skipping = False
    for text in paragraphs:
        if _RELATED_HEADING.match(text):
            skipping = True
            continue
        if skipping and len(text) <= _HEADLINE_MAX:
            continue
        skipping = False
        out.append(text)
    return out


def _clean_paragraphs(paragraphs: Iterable[str], title: str, *, chosen: bool = False) -> list[str]:
    """Chrome lines dropped; related-article lists too, unless a configured selector `chosen` the
    element (then its lists are what the user asked for)."""
    out = [c for c in map(_clean_paragraph, paragraphs) if c]
    if not chosen:
        out = _without_related_lists(out)
    # A body that repeats the title as its first line (an <h1> inside .article, trafilatura output).
    if out and title and normalise_text(out[0]) == normalise_text(title):
        out.pop(0)
    return out


# ---------------------------------------------------------------------------------------------
# tree helpers


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


# ---------------------------------------------------------------------------------------------
# metadata

# Labels of the gov.cn-style metadata table (索引号 / 发文机关 / 发文字号 ...): three of the core ones
# make a table a metadata table.
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
_META_TABLE_LABELS = frozenset(_META_TABLE_CORE) | {
    "发布机构",
    "公文种类",
    "主题词",
    "有效性",
    "文号",
    "体裁分类",
    "组配分类",
    "公开方式",
    "公开范围",
}
_COMPACT = re.compile(r"[\s:：]+")


def _compact(text: str) -> str:
    return _COMPACT.sub("", text)


def _find_meta_tables(soup: BeautifulSoup) -> list[Tag]:
    """The innermost tables carrying gov.cn-style 索引号/发文机关/发文字号... labels (a page may
    print the table twice, for desktop and mobile)."""
    found: list[Tag] = []
    for table in soup.find_all("table"):
        text = _compact(table.get_text())
        if sum(label in text for label in _META_TABLE_CORE) >= 3:
            found.append(table)
    return [
        table
        for table in found
        if not any(other is not table and any(p is table for p in other.parents) for other in found)
    ]


def _parse_meta_table(table: Tag) -> dict[str, str]:
    values: dict[str, str] = {}
    pending: str | None = None
    for cell in table.find_all(("td", "th")):
        if cell.find(("td", "th")) is not None:
            continue  # a layout cell around nested cells
        text = fold_whitespace(cell.get_text(" "))
        label = _compact(text)
        if label in _META_TABLE_LABELS:
            pending = label
            continue
        head, sep, tail = text.replace("：", ":").partition(":")
        if sep and _compact(head) in _META_TABLE_LABELS and tail.strip():
            values.setdefault(_compact(head), tail.strip())
            pending = None
        elif pending is not None:
            if text:
                values.setdefault(pending, text)
            pending = None
    return values


def _read_metas(soup: BeautifulSoup) -> dict[str, str]:
    metas: dict[str, str] = {}
    for meta in soup.find_all("meta"):
        key = meta.get("name") or meta.get("property") or meta.get("itemprop")
        content = meta.get("content")
        if key and content and isinstance(key, str) and isinstance(content, str):
            value = fold_whitespace(content)
            if value:
                metas.setdefault(key.strip().lower(), value)
    return metas


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


_ISSUER_LINE = re.compile(
    r"(?:发文机关|发布机构|发文单位|信息来源|文章来源|稿件来源|来源)\s*[:：]\s*([^\s|｜:：()（）\[\]【】<>]{2,40})"
)
# A publication date as pages label it; not 成文日期 (the date written) nor the dates a notice sets.
_DATE_LINE = re.compile(
    r"(?<!成文|签发|印发|实施|施行|截止|有效|开始|结束|会议|活动|报名|申报|办理)"
    r"(?:发布时间|发布日期|发文日期|生成日期|时间|日期)\s*[:：]\s*"
    r"([0-9０-９]{4}\s*(?:[-/.]\s*[0-9０-９]{1,2}\s*[-/.]\s*[0-9０-９]{1,2}|年\s*[0-9０-９]{1,2}\s*月\s*[0-9０-９]{1,2}\s*日))"
)
_DOC_NUMBER_LINE = re.compile(r"(?:发文字号|文件编号|文\s*号|字号)\s*[:：]\s*([^\n]{4,60})")


def _first_group(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------------------------
# body


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


def _describe(tag: Tag) -> str:
    """div#UCAP-CONTENT.mhide: how a container is named in `ExtractedDocument.reasons`."""
    raw = tag.get("class") or ()
    classes = (raw,) if isinstance(raw, str) else tuple(raw)
    ident = f"#{tag['id']}" if tag.get("id") else ""
    return tag.name + ident + "".join(f".{c}" for c in classes[:3])


def _doc_number(
    metas: dict[str, str], table: dict[str, str], page_text: str, paragraphs: list[str], title: str
) -> str | None:
    for candidate in (table.get("发文字号"), table.get("文号"), metas.get("fwzh"), metas.get("wenhao")):
        number = parse_doc_number(candidate or "")
        if number:
            return number
    for m in _DOC_NUMBER_LINE.finditer(page_text):
        number = parse_doc_number(m.group(1))
        if number:
            return number
    # A number printed on its own line at the top of the body (not one the text merely cites);
    # an order prints "…部令" and "第 38 号" on two lines.
    top = paragraphs[:6]
    for i, para in enumerate(top):
        candidate = para
        if para.endswith(("令", "公告", "通告")) and i + 1 < len(top):
            candidate += top[i + 1]
        number = parse_doc_number(candidate)
        if number and len(_compact(candidate)) <= len(_compact(number)) + 2:
            return number
    return _title_number(title) or _subject_number(title, paragraphs)


# "…关于防范比特币风险的通知（银发〔2013〕289号）": a title that ends with its own number.
_TITLE_NUMBER = re.compile(r"[（(\[【]([^（）()\[\]【】]{4,40})[）)\]】]\s*$")


def _title_number(title: str) -> str | None:
    m = _TITLE_NUMBER.search(title)
    return parse_doc_number(m.group(1)) if m else None


# "…联合印发了《…关于防范比特币风险的通知》（银发〔2013〕289号，以下简称“《通知》”）": a page about
# a document gives that document's number right after its title.
_CITED = re.compile(r"《([^《》]{4,120})》\s*[（(]([^（）()]{4,60})[）)]")
_SUBJECT_START = re.compile(r"关于")


def _subject_key(title: str) -> str:
    """The part of a title that names the document: from its last "关于" on, normalised."""
    text = normalise_text(title)
    starts = [m.start() for m in _SUBJECT_START.finditer(text)]
    return text[starts[-1] :] if starts else text


def _names_subject(cited: str, key: str) -> bool:
    """The cited title is the page title's subject: the same from 关于 on, or most of the title."""
    cited_key = _subject_key(cited)
    if cited_key == key:
        return True
    return len(cited_key) >= 6 and cited_key in key and len(cited_key) * 2 >= len(key)


# A page that explains a document is not that document: it has no number of its own.
_INTERPRETATION = re.compile(r"解读|答记者问|记者问|问答|图解|一图(?:读|看)懂|吹风会|新闻发布会")


def _subject_number(title: str, paragraphs: list[str]) -> str | None:
    """The number cited next to the document the page itself is about (its title names it)."""
    key = _subject_key(title) if title else ""
    if len(key) < 6 or _INTERPRETATION.search(title):
        return None
    for para in paragraphs[:3]:
        for m in _CITED.finditer(para):
            if _names_subject(m.group(1), key):
                number = parse_doc_number(m.group(2))
                if number:
                    return number
    return None


_DATE_METAS = (
    "publishdate",
    "firstpublishedtime",
    "article:published_time",
    "og:release_date",
    "datepublished",
    "dc.date",
    "publish_date",
)


def _published_at(metas: dict[str, str], table: dict[str, str], page_text: str, title: str) -> str | None:
    # What the page prints beats what its <meta> says: CMSs that regenerate pages (TRS, Kaipu)
    # stamp PubDate with the generation time ("页面生成时间"), years after publication.
    candidates = [
        table.get("发布日期"),
        _first_group(_DATE_LINE, page_text),
        _date_after_title(page_text, title),
        _sourced_datetime(page_text),
    ]
    candidates += [table.get("发文日期"), table.get("生成日期"), table.get("制发日期")]
    candidates += [metas.get("pubdate"), *(metas.get(k) for k in _DATE_METAS), table.get("成文日期")]
    for candidate in candidates:
        date = parse_date(candidate or "")
        if date:
            return date
    return None


def _date_after_title(page_text: str, title: str) -> str | None:
    """A date on a short line just under the title ("<h1>…</h1><div>2022年01月12日 17:16 来源：…</div>")."""
    if not title:
        return None
    lines = [folded for folded in map(fold_whitespace, page_text.splitlines()) if folded]
    try:
        at = lines.index(title)
    except ValueError:
        return None
    # Source, author and date share the lines under a title, in any order.
    for line in lines[at + 1 : at + 5]:
        if len(line) > _SHORT_LINE:
            break
        date = parse_date(line)
        if date:
            return date
    return None


_SHORT_LINE = 50
# "本文来源于 国家统计局 2024-05-11 09:36:26", "2024-03-05 10:30 来源：新华社": a date with its time
# on the line that names the source is when the page was published.
_DATETIME = r"(?:19|20)\d{2}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?\s*\d{1,2}\s*[:：]\s*\d{2}"
_SOURCED_DATETIME = re.compile(
    rf"(?:来源|稿源|出处).{{0,40}}?({_DATETIME})|({_DATETIME}).{{0,40}}?(?:来源|稿源|出处)"
)


def _sourced_datetime(page_text: str) -> str | None:
    for line in page_text.splitlines():
        if len(line) <= 2 * _SHORT_LINE and (m := _SOURCED_DATETIME.search(line)):
            return m.group(1) or m.group(2)
    return None


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
