"""Realistic Chinese policy pages for tests, built from plain text.

(Long, ~550 lines, on purpose: each builder is one whole page template of a real site family, HTML
and chrome included, and reads best in one piece next to the others it is compared with.)

Every builder takes a title and the body paragraphs (plain text, no HTML) and returns the page as
`str`; the extracted body of the page is exactly those paragraphs (after whitespace folding), while
everything around them is page chrome that changes between fetches (visit counter, sidebar...).

    gov_cn_page(...)        gov.cn-style: CMS metas, 发文字号 table, #UCAP-CONTENT body, full chrome
    provincial_page(...)    older TRS-style provincial page: div.TRS_Editor, table layout, GB2312 meta;
                            encode it yourself: page.encode("gbk") (non-GBK characters are already &#...;)
    news_repost_page(...)   a financial-news repost: injected stock keyword links, "返回首页", no CMS
                            conventions at all (extracted by trafilatura)
    plain_page(...)         HTML5 page of no known convention (extracted by trafilatura)
    not_found_page(...)     a small soft-404 page served with status 200

    corpus_paragraphs(name) non-empty lines of demosite/corpus/<name>*.txt
    corpus_document(name)   (title, body paragraphs) of a corpus file, page chrome lines removed
    demo_text(name)         a policy text written for the demo and the tests (demosite/texts/<name>.txt)

Listings (each takes (title, url, date) items, newest first):

    json_listing(items)     a www.gov.cn-style JSON list: [{"TITLE", "SUB_TITLE", "URL", "DOCRELPUBTIME"}]
    rss_feed(title, link, items)  an RSS 2.0 feed
    listing_page(title, items, ...) a TRS-style HTML list page (ul li a + date span, page links)

Common keyword arguments: `counter` (the visit counter: vary it to simulate a refetch), `sidebar`
(related-link titles: reorder them), `keyword_links` (words of the body to wrap in the injected
`<span id="Info.3271"><a class="infokey">` stock links), `wrap` (hard-wrap the paragraph source
every N characters with "\\r\\n", as old editors do: the extracted display text then has spaces
where the wraps were, the normalised text does not).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from policywatch.demosite import CORPUS_DIR

TEXTS_DIR = Path(__file__).resolve().parent / "texts"

__all__ = [
    "CORPUS_DIR",
    "TEXTS_DIR",
    "DemoText",
    "ListingItem",
    "corpus_document",
    "corpus_paragraphs",
    "demo_text",
    "gov_cn_page",
    "json_listing",
    "keyword_link",
    "listing_page",
    "news_repost_page",
    "not_found_page",
    "plain_page",
    "provincial_page",
    "rss_feed",
]

DEFAULT_SIDEBAR = ("相关链接A", "相关链接B")


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def keyword_link(word: str, info_id: int = 3271) -> str:
    """The stock-keyword link finance sites inject around words of a reposted text."""
    return (
        f'<span id="Info.{info_id}"><a href="http://quote.example/data/{info_id}/" '
        f'class="infokey">{_esc(word)}</a></span>'
    )


def _hard_wrap(text: str, width: int) -> str:
    """Insert "\r\n" about every `width` characters, between two non-ASCII characters only (a
    browser shows a wrap inside "GDP" or "32.5" as a space, so editors do not put one there)."""
    out, run = [], 0
    for i, ch in enumerate(text):
        if run >= width and i and not text[i - 1].isascii() and not ch.isascii():
            out.append("\r\n")
            run = 0
        out.append(ch)
        run += 1
    return "".join(out)


def _inline(text: str, keyword_links: Iterable[str] = (), wrap: int | None = None) -> str:
    """Escape `text`, wrap the keywords in injected links, optionally hard-wrap the source."""
    words = sorted({w for w in keyword_links if w}, key=len, reverse=True)
    if wrap:
        text = _hard_wrap(text, wrap)
    if not words:
        return _esc(text)
    pattern = re.compile("|".join(map(re.escape, words)))
    out, pos = [], 0
    for n, m in enumerate(pattern.finditer(text)):
        out.append(_esc(text[pos : m.start()]))
        out.append(keyword_link(m.group(), 3271 + n))
        pos = m.end()
    out.append(_esc(text[pos:]))
    return "".join(out)


def _zh_date(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{y}年{m}月{d}日"


def _sidebar_html(sidebar: Sequence[str], heading: str = "相关链接") -> str:
    items = "".join(
        f'<li><a href="/related/{i}.htm" target="_blank">{_esc(t)}</a></li>' for i, t in enumerate(sidebar)
    )
    return f'<div class="lm-title">{heading}</div><ul class="list">{items}</ul>'


_GOV_SCRIPTS = """<script type="text/javascript">
var _hmt = _hmt || [];
(function() { var hm = document.createElement("script"); hm.src = "https://hm.example/hm.js?x"; })();
document.write('<span>浏览次数：</span>');
</script>"""


def gov_cn_page(
    title: str,
    paragraphs: Iterable[str],
    *,
    doc_number: str | None = None,
    issuer: str | None = None,
    pub_date: str | None = None,
    counter: int = 123,
    sidebar: Sequence[str] = DEFAULT_SIDEBAR,
    charset: str = "utf-8",
    keyword_links: Iterable[str] = (),
    wrap: int | None = None,
    written_date: str | None = None,
    mobile_copy: bool = False,
    table_in_body: bool = False,
) -> str:
    """A www.gov.cn policy page (zhengce/content style).

    `pub_date` / `written_date` are ISO dates. The 发文字号 metadata table (索引号 / 发文机关 /
    成文日期 / 标题 / 发文字号 / 发布日期) is rendered when `doc_number` or `issuer` is given;
    `table_in_body` puts it inside the #UCAP-CONTENT body as some sites do. `mobile_copy` adds a
    second copy of the body for mobile layouts (same id, as real sites do).
    """
    paragraphs = list(paragraphs)
    keyword_links = tuple(keyword_links)
    body = "\n".join(
        f'<p style="text-indent: 2em; font-family: 宋体;">{_inline(p, keyword_links, wrap)}</p>'
        for p in paragraphs
    )
    metas = [f'<meta charset="{_attr(charset)}">', f'<meta name="ArticleTitle" content="{_attr(title)}">']
    if pub_date:
        metas.append(f'<meta name="PubDate" content="{pub_date} 16:00">')
    if issuer:
        metas.append(f'<meta name="ContentSource" content="{_attr(issuer)}">')
    metas.append('<meta name="keywords" content="数字经济,规划">')
    table = ""
    if doc_number or issuer:
        written = written_date or pub_date
        table = f"""<table class="bd1" cellpadding="0" cellspacing="1" width="100%">
<tbody>
<tr><td width="80"><b>索　引　号：</b></td><td width="270">000014349/2022-00013</td>
<td width="80"><b>主题分类：</b></td><td>国民经济管理、国有资产监管\\其他</td></tr>
<tr><td><b>发文机关：</b></td><td>{_esc(issuer or "")}</td>
<td><b>成文日期：</b></td><td>{_zh_date(written) if written else ""}</td></tr>
<tr><td><b>标　　题：</b></td><td colspan="3">{_esc(title)}</td></tr>
<tr><td><b>发文字号：</b></td><td>{_esc(doc_number or "")}</td>
<td><b>发布日期：</b></td><td>{_zh_date(pub_date) if pub_date else ""}</td></tr>
</tbody></table>"""
    date_line = f"{pub_date} 16:00" if pub_date else ""
    mobile = ""
    if mobile_copy:
        mobile = (
            f'<div class="mobile-content"><div id="UCAP-CONTENT" class="pages_content">{body}</div></div>'
        )
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
{chr(10).join(metas)}
<title>{_esc(title)}_国务院文件_中国政府网</title>
<link rel="stylesheet" href="/css/pages.css">
<style>.mobile-content {{ display: none; }} @media (max-width: 768px) {{ .mobile-content {{ display: block; }} }}</style>
{_GOV_SCRIPTS}
</head>
<body>
<div class="header">
  <div class="logo"><h1><a href="/">中国政府网</a></h1></div>
  <ul class="nav_list"><li><a href="/">首页</a></li><li><a href="/zhengce/">政策</a></li>
  <li><a href="/hudong/">互动</a></li><li><a href="/fuwu/">服务</a></li></ul>
</div>
<div class="BreadcrumbNav">当前位置：<a href="/">首页</a> &gt; <a href="/zhengce/">政策</a> &gt; <a href="/zhengce/xxgk/">国务院文件</a></div>
<div class="policyLibraryOverview_header">{"" if table_in_body else table}</div>
<div class="article oneColumn pub_border">
  <h1>{_esc(title)}</h1>
  <div class="pages-date">{date_line} 来源：{_esc(issuer or "中国政府网")}
    <span class="font">字号：<a href="javascript:void(0)">大</a> <a href="javascript:void(0)">中</a> <a href="javascript:void(0)">小</a></span>
    <span class="hits">浏览次数：<em id="hits">{counter}</em></span>
  </div>
  <div class="pages_content mhide" id="UCAP-CONTENT">
{table if table_in_body else ""}
{body}
  </div>
  <div class="editor">【我要纠错】 责任编辑：王洋</div>
  <div class="pages_print"><a href="javascript:window.print()">【打印本页】</a> <a href="javascript:window.close()">【关闭窗口】</a></div>
  <div class="share"><div class="bdsharebuttonbox"><span>分享到：</span><a class="bds_weixin" title="分享到微信">微信</a>
  <a class="bds_tsina" title="分享到新浪微博">微博</a></div></div>
</div>
{mobile}
<div class="sidebar related">{_sidebar_html(sidebar)}</div>
<div class="footer">
  <p>主办单位：国务院办公厅　运行维护单位：中国政府网运行中心</p>
  <p>版权所有：中国政府网　中文域名：中国政府网.政务　网站标识码bm01000001　京ICP备05070218号　京公网安备11010202000001号</p>
</div>
<script>window.onload = function() {{ document.getElementById("hits").innerHTML = "{counter}"; }};</script>
</body>
</html>
"""


def provincial_page(
    title: str,
    paragraphs: Iterable[str],
    *,
    doc_number: str | None = None,
    issuer: str | None = "江西省人民政府办公厅",
    pub_date: str | None = None,
    counter: int = 123,
    sidebar: Sequence[str] = DEFAULT_SIDEBAR,
    charset: str = "gb2312",
    keyword_links: Iterable[str] = (),
    wrap: int | None = None,
) -> str:
    """An older TRS-CMS provincial page: table layout, div.TRS_Editor body with U+3000 indents and
    <font> tags, an info line "发布时间：… 来源：… 文号：… 浏览次数：… 【字体：大 中 小】", no metas.

    Declares `<meta charset=gb2312>`; characters outside `charset` are written as &#...; so that
    `page.encode("gbk")` always works.
    """
    keyword_links = tuple(keyword_links)
    body = "\n".join(
        f'<p align="justify">\u3000\u3000<font face="仿宋_GB2312" size="4">{_inline(p, keyword_links, wrap)}</font></p>'
        for p in paragraphs
    )
    info = []
    if pub_date:
        info.append(f"发布时间：{pub_date} 10:30")
    if issuer:
        info.append(f"来源：{_esc(issuer)}")
    if doc_number:
        info.append(f"文号：{_esc(doc_number)}")
    info.append(f'浏览次数：<span id="hits">{counter}</span>')
    info.append('【字体：<a href="#">大</a> <a href="#">中</a> <a href="#">小</a>】')
    side = "".join(f'<li><a href="/art/{i}.html">{_esc(t)}</a></li>' for i, t in enumerate(sidebar))
    page = f"""<html>
<head>
<meta charset={charset}>
<title>{_esc(title)}-江西省人民政府</title>
<script language="javascript" src="/js/common.js"></script>
<style type="text/css">.TRS_Editor P {{ line-height: 2; font-size: 16pt; }}</style>
</head>
<body topmargin="0">
<table width="1000" align="center" class="top"><tr><td><div id="logo"><h1>江西省人民政府</h1></div></td>
<td><a href="/">首页</a> | <a href="/zwgk/">政务公开</a> | <a href="/bsfw/">办事服务</a></td></tr></table>
<table width="1000" align="center"><tr><td class="position">您现在的位置：<a href="/">首页</a> &gt; <a href="/zwgk/">政府信息公开</a> &gt; <a href="/zfwj/">省政府文件</a></td></tr></table>
<table width="1000" align="center" cellpadding="0" cellspacing="0"><tr>
<td width="740" valign="top">
  <div class="title">{_esc(title)}</div>
  <div class="info">{"&nbsp;&nbsp;".join(info)}</div>
  <div class="TRS_Editor"><div class="Custom_UnionStyle">
{body}
  </div></div>
  <div class="btn">【<a href="javascript:window.print()">打印本页</a>】 【<a href="javascript:window.close()">关闭窗口</a>】</div>
</td>
<td width="240" valign="top" class="right-side"><div class="xgwz"><div>相关文章</div><ul>{side}</ul></div></td>
</tr></table>
<table width="1000" align="center" class="foot"><tr><td>主办：江西省人民政府办公厅　承办：江西省信息中心<br>赣ICP备05004171号</td></tr></table>
</body>
</html>
"""
    if charset.lower().replace("-", "") not in ("utf8",):
        page = page.encode(charset, "xmlcharrefreplace").decode(charset)
    return page


def news_repost_page(
    title: str,
    paragraphs: Iterable[str],
    *,
    source: str = "财联社",
    pub_date: str | None = "2022-01-12",
    counter: int = 123,
    sidebar: Sequence[str] = DEFAULT_SIDEBAR,
    keyword_links: Iterable[str] = ("重组", "数字经济"),
) -> str:
    """A finance-news repost (eastmoney-like): no CMS metas or containers, keyword links injected
    into the body, a "（文章来源：…）" line at its end, "返回…" navigation around it."""
    keyword_links = tuple(keyword_links)
    body = "".join(f"<p>{_inline(p, keyword_links)}</p>" for p in paragraphs)
    date = f"{_zh_date(pub_date)} 17:16" if pub_date else ""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{_esc(title)}_东方财富网</title>
<meta name="description" content="{_attr(title)}">
<script src="//emres.example/common.js"></script></head>
<body>
<div class="topnav"><a href="//finance.example/">返回首页</a> | <a href="//finance.example/news/">财经频道</a> | <a href="//quote.example/">行情中心</a></div>
<div class="grid">
<div class="newsContent">
  <h1>{_esc(title)}</h1>
  <div class="infos"><div class="item">{date}</div><div class="item">来源：{_esc(source)}</div>
  <div class="item">阅读量：<span>{counter}</span></div></div>
  <div class="txtinfos" id="ContentBody">
    {body}
    <p class="em_media">（文章来源：{_esc(source)}）</p>
  </div>
  <div class="back"><a href="//finews.example/emnews/">返回东财滚动新闻</a>｜<a href="//finews.example/">返回首页</a></div>
</div>
<div class="sidebar"><div class="hot">相关新闻</div><ul>{"".join(f'<li><a href="/a/{i}.html">{_esc(t)}</a></li>' for i, t in enumerate(sidebar))}</ul></div>
</div>
<div class="footer">违法和不良信息举报 网站备案号 沪ICP证:沪B2-20070217</div>
</body></html>
"""


def plain_page(
    title: str,
    paragraphs: Iterable[str],
    *,
    site: str = "某某市人民政府",
    counter: int = 123,
    sidebar: Sequence[str] = DEFAULT_SIDEBAR,
    keyword_links: Iterable[str] = (),
) -> str:
    """An HTML5 page of no known CMS convention (header/nav/main/article/aside/footer): the
    "auto" (trafilatura) path."""
    keyword_links = tuple(keyword_links)
    body = "\n".join(f"<p>{_inline(p, keyword_links)}</p>" for p in paragraphs)
    side = "".join(f'<li><a href="/n/{i}.html">{_esc(t)}</a></li>' for i, t in enumerate(sidebar))
    return f"""<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>{_esc(title)} - {_esc(site)}</title></head>
<body>
<header><a href="/">{_esc(site)}</a><nav><a href="/">首页</a> <a href="/news/">新闻动态</a> <a href="/gk/">信息公开</a></nav></header>
<main>
<article>
<h1>{_esc(title)}</h1>
{body}
</article>
<aside><h2>相关链接</h2><ul>{side}</ul><p>访问量：{counter}</p></aside>
</main>
<footer><p>版权所有 © {_esc(site)}  地址：某某路1号</p></footer>
</body></html>
"""


def not_found_page(message: str = "您访问的页面不存在") -> str:
    """A small soft-404 page (served with status 200 by many government sites)."""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>提示信息</title>
<style>body {{ text-align: center; }}</style></head>
<body><div class="error"><img src="/images/404.png" alt=""><p>{_esc(message)}</p>
<p><a href="/">返回首页</a></p></div></body></html>
"""


# ---------------------------------------------------------------------------------------------
# corpus


def _corpus_file(name: str) -> Path:
    matches = sorted(CORPUS_DIR.glob(f"{name}*.txt"))
    if not matches:
        raise FileNotFoundError(f"no corpus file {name}*.txt in {CORPUS_DIR}")
    return matches[0]


def _fold(text: str) -> str:
    return " ".join(text.split())


_BLOCK_TAG = re.compile(r"</?(?:p|h\d|center|div|br|li|blockquote)\b[^>]*>", re.I)
_ANY_TAG = re.compile(r"<[^>]+>")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    if not text.startswith("---"):
        return {}, text
    _, head, rest = text.split("---", 2)
    fields = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields, rest


def corpus_paragraphs(name: str) -> list[str]:
    """Non-empty lines of demosite/corpus/<name>*.txt, whitespace folded (e.g. name="004").

    For 003 (a Jekyll post) the YAML front matter, the markdown quote (a summary repeating the first
    paragraph) and the markdown link lines are dropped and the article HTML is split at block tags
    with the tags removed (the injected keyword links become plain text). Other files are returned
    line by line, chrome included (001 starts with a breadcrumb and a "时间:" line): use
    `corpus_document` for a clean (title, body).
    """
    text = _corpus_file(name).read_text(encoding="utf-8")
    if text.startswith("---"):
        _, text = _front_matter(text)
        parts: list[str] = []
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith((">", "<http", "[")):
                continue
            for chunk in _BLOCK_TAG.split(stripped):
                chunk = _fold(html.unescape(_ANY_TAG.sub("", chunk)))
                if chunk:
                    parts.append(chunk)
        return parts
    return [folded for folded in (_fold(line) for line in text.splitlines()) if folded]


_CORPUS_TITLE_000 = "数字经济学习资料：数字西藏建设与国家数字化转型政策"  # synthetic: 000 has no title line


def corpus_document(name: str) -> tuple[str, list[str]]:
    """(title, body paragraphs) of a corpus file, with the page chrome the file carries removed.

    000: a synthetic title, all lines. 001: the title line; breadcrumb, "时间:" and "来源:" lines
    dropped. 003: the front-matter title; the "（文章来源：…）" line dropped. 004: the first line
    (the notice title) and the rest.
    """
    lines = corpus_paragraphs(name)
    path = _corpus_file(name)
    if path.name.startswith("000"):
        return _CORPUS_TITLE_000, lines
    if path.name.startswith("001"):
        body = [line for line in lines[3:] if not re.match(r"^(?:来源|时间)\s*[:：]", line)]
        return lines[1], body
    if path.name.startswith("003"):
        fields, _ = _front_matter(path.read_text(encoding="utf-8"))
        return fields["title"], [line for line in lines if not re.match(r"^[(（]文章来源", line)]
    return lines[0], lines[1:]


# ---------------------------------------------------------------------------------------------
# texts written for the demo and the tests


@dataclass(frozen=True)
class DemoText:
    title: str
    doc_number: str | None
    issuer: str | None
    date: str | None  # ISO
    paragraphs: list[str]


def demo_text(name: str) -> DemoText:
    """A policy text of demosite/texts/<name>.txt: "key: value" lines, "---", then one paragraph a line.

    public_data_notice (digital-economy policy) and grain_storage, school_safety, forest_fire
    (policy texts of other fields, for the relevance tests).
    """
    head, _, body = (TEXTS_DIR / f"{name}.txt").read_text(encoding="utf-8").partition("---\n")
    fields = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
    return DemoText(
        title=fields["title"],
        doc_number=fields.get("doc_number"),
        issuer=fields.get("issuer"),
        date=fields.get("date"),
        paragraphs=[folded for folded in (_fold(line) for line in body.splitlines()) if folded],
    )


# ---------------------------------------------------------------------------------------------
# listings

ListingItem = tuple[str, str, str]  # (title, url, ISO date)
_CST = timezone(timedelta(hours=8))


def json_listing(items: Iterable[ListingItem]) -> str:
    """A www.gov.cn-style JSON listing (ZUIXINZHENGCE.json): a list of TITLE / SUB_TITLE / URL / DOCRELPUBTIME."""
    rows = [
        {"TITLE": title, "SUB_TITLE": "", "URL": url, "DOCRELPUBTIME": date} for title, url, date in items
    ]
    return json.dumps(rows, ensure_ascii=False, indent=1)


def rss_feed(title: str, link: str, items: Iterable[ListingItem]) -> str:
    """An RSS 2.0 feed of the items (pubDate in RFC 822, China Standard Time)."""
    entries = []
    for item_title, url, date in items:
        when = format_datetime(datetime.fromisoformat(date).replace(hour=17, minute=16, tzinfo=_CST))
        entries.append(
            f"<item><title>{_esc(item_title)}</title><link>{_esc(url)}</link>"
            f'<guid isPermaLink="true">{_esc(url)}</guid><pubDate>{when}</pubDate></item>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{_esc(title)}</title><link>{_esc(link)}</link><description>{_esc(title)}</description>"
        + "".join(entries)
        + "</channel></rss>\n"
    )


def listing_page(
    title: str,
    items: Iterable[ListingItem],
    *,
    pages: Sequence[str] = (),
    charset: str = "utf-8",
) -> str:
    """A TRS-style list page: breadcrumb, ul.list of li > a + span date, page links (`pages`: their URLs).

    With a GB charset the page declares it and characters outside it are written as &#...;
    """
    rows = "\n".join(
        f'<li><a href="{_attr(url)}" target="_blank" title="{_attr(item_title)}">{_esc(item_title)}</a>'
        f"<span>{_esc(date)}</span></li>"
        for item_title, url, date in items
    )
    paging = " ".join(f'<a href="{_attr(url)}">{n}</a>' for n, url in enumerate(pages, start=1))
    page = f"""<html><head><meta charset={charset}><title>{_esc(title)}</title></head>
<body><div class="position">当前位置：<a href="/">首页</a> &gt; {_esc(title)}</div>
<ul class="list">
{rows}
</ul>
<div class="page">{paging}</div>
</body></html>
"""
    if charset.lower().replace("-", "") != "utf8":
        page = page.encode(charset, "xmlcharrefreplace").decode(charset)
    return page
