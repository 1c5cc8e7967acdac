"""Paragraph cleaning: the chrome lines a body container still holds, found in its text alone.

Chrome removal (extraction.containers) works on elements; what it cannot see is chrome printed as
text inside the body: breadcrumb and pager lines, visit counters, [打印] [关闭] buttons, "发布时间：…
来源：…" info lines, footers, disclaimers, and lists of related articles under a "相关阅读" heading.
`_clean_paragraphs` drops or scrubs them from the body's paragraphs (whichever way they were read:
containers, trafilatura, the longest block), so that two fetches of an unchanged page give the same
text. Pure text rules, no tree. `_RELATED_HEADING` is also what the title decision
(extraction.title) uses to skip the heading of a box of links; extraction.equivalence keeps a copy
of it, checked (through extraction.document) by tests/test_fastpath_noise.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .normalise import fold_whitespace, normalise_text

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
