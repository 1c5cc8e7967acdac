"""Document metadata as a page shows it: metadata tables, <meta> tags, 发文字号, issuer and date.

`_find_meta_tables` / `_parse_meta_table` read the gov.cn-style table (索引号 / 发文机关 / 发文字号 ...)
that extraction.document removes from the page before reading the body; `_read_metas` the <meta>
tags. From those and the page text, `_doc_number` and `_published_at` choose the 发文字号 and the
publication date (the order of their candidates is the decision), and `_ISSUER_LINE` finds a
labelled issuer. Parsing a number or a date out of a string is extraction.docmeta (free of
BeautifulSoup, shared with the attachment readers); this module decides where on an HTML page to
look. extraction.equivalence keeps a copy of `_META_TABLE_CORE`, checked (through
extraction.document) by tests/test_fastpath_noise.py.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

from .docmeta import parse_date, parse_doc_number
from .normalise import fold_whitespace, normalise_text

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
