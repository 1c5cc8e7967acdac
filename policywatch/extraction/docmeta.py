"""Policy document metadata: document number (发文字号) and dates."""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata

__all__ = ["canonical_doc_number", "parse_date", "parse_doc_number"]

# Opening / closing brackets seen around the year of a 发文字号.
_OPEN = "〔[【(（［〖﹝⦅｟〘"
_CLOSE = "〕]】)）］〗﹞⦆｠〙"

_DOC_NUMBER = re.compile(
    rf"""
    (?P<prefix>[\u4e00-\u9fff]{{1,16}})          # issuer abbreviation: 国发, 赣府发, 工信部联规, 国办函
    \s*[{re.escape(_OPEN)}]\s*
    (?P<year>(?:19|20)\d{{2}})
    \s*[{re.escape(_CLOSE)}]\s*
    (?P<serial>第?\s*\d{{1,5}})\s*号
    """,
    re.VERBOSE,
)
# Orders and announcements are numbered without a bracketed year: 中华人民共和国信息产业部令第38号
# (also printed 令（第38号）), 国家税务总局公告2024年第3号, 海关总署公告〔2023〕第12号 is the bracket form.
_SERIAL_NUMBER = re.compile(
    r"""
    (?P<prefix>[\u4e00-\u9fff]{2,30}?(?:令|公告|通告))
    \s*[（(]?\s*(?:(?P<year>(?:19|20)\d{2})\s*年\s*)?
    第\s*(?P<serial>\d{1,5})\s*号\s*[）)]?
    """,
    re.VERBOSE,
)
# Words that precede a number in running text but are not part of it: "根据国发〔2021〕29号".
_LEAD_IN = re.compile(r".*(?:印发|转发|根据|按照|依据|参照|关于|文号|字号|编号|详见|见|和|及|与|的|是|为)")

# Issuers of orders are full names ("中华人民共和国…部"): only verbs are cut, never 和 or 与.
_SERIAL_LEAD_IN = re.compile(r".*(?:印发|转发|根据|按照|依据|参照|关于|详见|公布|发布|施行|的)")

_BRACKETS = str.maketrans({**dict.fromkeys(_OPEN, "〔"), **dict.fromkeys(_CLOSE, "〕")})


def parse_doc_number(text: str) -> str | None:
    """The first 发文字号 in `text` (国发〔2021〕29号, 赣府发[2022]10号, 国办函〔2024〕第3号...), as printed.

    Numbers with a bracketed four-digit year; failing those, the serial numbers of orders and
    announcements (…部令第38号, …公告2024年第3号), as one string without spaces or brackets. Lead-in
    words glued to the issuer abbreviation ("根据国发〔2021〕29号", "文号：...") are cut off.
    """
    if not text:
        return None
    m = _DOC_NUMBER.search(text)
    if m is None:
        return _serial_number(text)
    prefix = _LEAD_IN.sub("", m.group("prefix"))
    if not prefix:
        # The whole prefix was a lead-in word ("根据〔2021〕..." is not a document number).
        rest = parse_doc_number(text[m.end() :])
        return rest
    start = m.end("prefix") - len(prefix)
    return text[start : m.end()].strip()


def _serial_number(text: str) -> str | None:
    m = _SERIAL_NUMBER.search(text)
    if m is None:
        return None
    prefix = _SERIAL_LEAD_IN.sub("", m.group("prefix"))
    if len(prefix) < 2 or prefix in ("公告", "通告"):
        return None
    year = f"{m.group('year')}年" if m.group("year") else ""
    return f"{prefix}{year}第{m.group('serial')}号"


def canonical_doc_number(number: str) -> str:
    """Comparison form of a 发文字号: NFKC, whitespace removed, brackets → 〔〕, "第" and leading zeros dropped.

    canonical_doc_number("国办函(2024)第3号") == canonical_doc_number("国办函〔2024〕3号").
    """
    text = unicodedata.normalize("NFKC", number)
    text = "".join(text.split()).translate(_BRACKETS)
    return re.sub(r"〕第?0*(\d)", r"〕\1", text)


_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4}
_CN_DIGITS.update({"五": 5, "六": 6, "七": 7, "八": 8, "九": 9})
_CN_DIGIT_CLASS = "".join(_CN_DIGITS)

_NUMERIC_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d{2})\s*(?:年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日|[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d))"
)
_CHINESE_DATE = re.compile(
    rf"([{_CN_DIGIT_CLASS}]{{4}})\s*年\s*([一二三四五六七八九十]{{1,2}})\s*月\s*([一二三四五六七八九十]{{1,3}})\s*日"
)


def _cn_number(text: str) -> int:
    """一..三十一 → int."""
    if "十" not in text:
        return _CN_DIGITS[text]
    tens, _, units = text.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_date(text: str) -> str | None:
    """The first valid date in `text` as ISO "YYYY-MM-DD", or None.

    Accepts 2022年5月25日, 2022-05-25, 2022/5/25, 2022.05.25 (also with a time after it, full-width
    digits, spaces) and dates in Chinese numerals such as 二〇二二年五月二十五日.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)
    for m in _NUMERIC_DATE.finditer(text):
        month, day = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5))
        iso = _iso(int(m.group(1)), int(month), int(day))
        if iso:
            return iso
    for m in _CHINESE_DATE.finditer(text):
        try:
            year = int("".join(str(_CN_DIGITS[c]) for c in m.group(1)))
            iso = _iso(year, _cn_number(m.group(2)), _cn_number(m.group(3)))
        except KeyError:
            continue
        if iso:
            return iso
    return None
