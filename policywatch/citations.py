"""References from one policy text to other policy documents: `find_references(text, title)`.

A reference is a document title in 《…》 and/or a 发文字号 (`《“十四五”数字经济发展规划》`,
`国发〔2021〕29号`, `《…办法》（数办发〔2019〕3号）` is one reference with both). Its kind comes from
the verbs of the clause it stands in, read as Chinese legal drafting uses them:

- repeals: 废止, 同时废止, 停止执行, 不再执行, 同时失效 (`《X》同时废止`, `废止《X》`);
- amends: 修改, 修订, 修正 (`关于修改《X》的决定`, `对《X》作如下修改`);
- implements: 贯彻, 落实 (`为贯彻落实《X》`), and a plan made on another's basis: `依据/根据/按照《X》
  …编制/制定本规划` (a plan, 方案, 计划 or 实施意见: a 办法 made `根据《…法》` cites its legal basis);
- cites: everything else (依据, 根据, 按照, 参照, a mention).

Verbs are looked for with every 《…》 masked (`《关于废止…的决定》` is a title, not a repeal), in the
reference's own clause first (commas end a clause, 、 does not: `《A》、《B》同时废止` repeals both),
then in its sentence. Not references: titles that are not documents (《人民日报》, 《求是》, a report),
2-character back-references (`《通知》`), and what a notice publishes itself (`现将《X》印发给你们`).
Pure and fast (regular expressions over the text, no parsing); measured on a labelled set of real
texts by `python -m benchmarks.references_eval`.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from policywatch.identity import number_key

KINDS = ("cites", "implements", "amends", "repeals")

_TITLE = re.compile(r"《([^《》\n]{2,120})》")
# A 发文字号 with a bracketed year; the issuer abbreviation is cut at lead-in words below.
_NUMBER = re.compile(
    r"(?P<prefix>[\u4e00-\u9fff]{1,16})\s*[〔\[【(（［﹝]\s*(?P<year>(?:19|20)\d{2})\s*[〕\]】)）］﹞]"
    r"\s*(?P<serial>第?\s*\d{1,5})\s*号"
)
_LEAD_IN = re.compile(
    r".*(?:印发|转发|根据|按照|依据|参照|关于|文号|字号|编号|详见|贯彻落实|贯彻|落实|执行|废止|修订|修改|"
    r"见|和|及|与|的|是|为|将|对|即|以|由|在|按|据|同时|原)"
)
# After a title: its number, in brackets or not: 《…》（国发〔2021〕29号）.
_NUMBER_AFTER = re.compile(
    r"\s*[（(]?\s*(?P<number>[\u4e00-\u9fff]{1,12}\s*[〔\[【(（［﹝]\s*(?:19|20)\d{2})"
)

# Document types: a title in 《》 that ends with none of these is not a policy document.
_DOCUMENT_TYPES = (
    "法",
    "条例",
    "规定",
    "办法",
    "细则",
    "规则",
    "决定",
    "决议",
    "通知",
    "意见",
    "规划",
    "纲要",
    "方案",
    "计划",
    "指南",
    "指引",
    "目录",
    "清单",
    "标准",
    "规范",
    "制度",
    "准则",
    "批复",
    "公告",
    "通告",
    "令",
    "函",
    "要点",
    "战略",
    "措施",
    "规程",
    "公约",
    "协定",
    "章程",
    "政府工作报告",
    "解释",
    "法典",
)
# Trailing marks after the type: （试行）, （2021—2025年）, （修订）, （2023年版）, （征求意见稿）.
_TRAILER = re.compile(r"(?:\s*[（(][^（）()]{1,16}[)）])+$")

_SENTENCE_END = re.compile(r"[。！？；;!?\n]")
_CLAUSE_END = re.compile(r"[，,：:\n]")  # a clause never runs past the end of its line

_REPEALS = re.compile(r"废止|停止执行|不再执行|同时失效|予以撤销|宣布失效")
_AMENDS = re.compile(r"修改|修订|修正")
_IMPLEMENTS = re.compile(r"贯彻|落实")
_BASIS = re.compile(r"依据|根据|按照|遵照")
_PLAN_MADE = re.compile(
    # 制定本规划; 研究制定了《…行动方案》 (the title masked: spaces)
    r"(?:编制|制定|制订)了?(?:本(?:规划|方案|计划|行动计划|实施方案|实施意见|意见|纲要)|\s{4,})"
)
_SELF_PUBLISHED = re.compile(r"现将|印发给|现予印发|予以印发|现印发")
_PROMULGATED = re.compile(r"现予公布|现予发布|予以公布|现予颁布")
# 修改后的《民事诉讼法》 names the amended law; it does not amend it.
_NOT_AMENDING = re.compile(r"修改[后前]的|修正[后前]的|修订[后前]的")
# An act that amends or repeals (《关于修改…的决定》) followed by 第N次修正: a history note.
_AMENDING_ACT = re.compile(r"修改|修正|废止")
_HISTORY_NOTE = re.compile(r"\s*(?:第[一二三四五六七八九十]+次)?(?:修正|修订)")
_PUT_INTO_FORCE = re.compile(r"(?:全面|贯彻|组织|认真|深入)实施$")
_ALIAS = re.compile(r"(?:以下简称|下称|简称)\s*[“\"]?《([^《》]{1,30})》")
_ORDER_HEADING = re.compile(r"令\s*[（(]?\s*第?\s*\d+\s*号\s*[）)]?\s*(?P<title>\S.*)$")
_PUBLISHES = re.compile(r"(?:关于)?(?:印发|转发|发布|公布|颁布)(?P<inner>.+?)的(?:通知|公告|决定|函)$")


@dataclass(frozen=True)
class Reference:
    kind: str  # cites | implements | amends | repeals
    title: str | None  # inside 《》, as printed
    doc_number: str | None  # canonical: 国发〔2021〕29号
    context: str  # the sentence, at most 200 characters around the reference
    start: int
    end: int


def is_document_title(title: str) -> bool:
    """《…》 holds a policy document (by its type word), not a newspaper, a book or a report."""
    core = _TRAILER.sub("", title.strip())
    return len(core) >= 3 and core.endswith(_DOCUMENT_TYPES)


def _masked(text: str) -> str:
    """The text with every 《…》 (brackets included) replaced by as many spaces: same offsets."""
    return _TITLE.sub(lambda m: " " * len(m.group(0)), text)


def _number_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, canonical number) of every 发文字号 in `text`, lead-in words cut off."""
    for m in _NUMBER.finditer(text):
        prefix = _LEAD_IN.sub("", m.group("prefix"))
        if not prefix:
            continue
        start = m.end("prefix") - len(prefix)
        canonical = number_key(text[start : m.end()])
        if canonical:
            yield start, m.end(), canonical


class _Marks:
    """Where the sentence or clause ends of a text are, found once (a reference's bounds are then
    two binary searches, not a scan of the text before it)."""

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self.positions = [m.start() for m in pattern.finditer(text)]
        self.length = len(text)

    def around(self, start: int, end: int) -> tuple[int, int]:
        """The stretch around [start, end) between two marks."""
        i = bisect_left(self.positions, start)
        before = self.positions[i - 1] + 1 if i else 0
        j = bisect_left(self.positions, end)
        return before, self.positions[j] if j < len(self.positions) else self.length


def _verb(scope: str, implements: bool = True) -> str | None:
    if _REPEALS.search(scope):
        return "repeals"
    if _AMENDS.search(_NOT_AMENDING.sub("", scope)):
        return "amends"
    if implements and _IMPLEMENTS.search(scope):
        return "implements"
    return None


def _kind(
    masked: str, start: int, end: int, cited: str | None, marks: tuple[_Marks, _Marks] | None = None
) -> str | None:
    """The relation the verbs around [start, end) give; None for what the document publishes itself.
    The reference's clause decides when it has a verb of its own (`根据《A》，对《B》作如下修改`: A is
    cited, B amended); a clause without one takes a repeal or an amendment from its sentence
    (`《A》、《B》同时废止`), never an implementation (`依照《A》…对…责任制的落实` cites A)."""
    sentences, clauses = marks or (_Marks(_SENTENCE_END, masked), _Marks(_CLAUSE_END, masked))
    s_start, s_end = sentences.around(start, end)
    c_start, c_end = clauses.around(start, end)
    clause, sentence = masked[c_start:c_end], masked[s_start:s_end]
    if _SELF_PUBLISHED.search(clause) or _PROMULGATED.search(sentence):
        return None
    if cited and _AMENDING_ACT.search(cited) and _HISTORY_NOTE.match(masked, end):
        return "cites"  # 《关于修改…的决定》第二次修正: the act that amended the citing document
    if _PUT_INTO_FORCE.search(masked, max(c_start, start - 6), start):
        return "implements"  # 全面实施《全民健身计划》
    verb = _verb(clause)
    if verb is not None:
        return verb
    if _BASIS.search(clause):
        return "implements" if _PLAN_MADE.search(sentence) else "cites"
    return _verb(sentence, implements=False) or "cites"


def publishes(title: str) -> str | None:
    """The title a notice publishes: `…关于印发“十四五”数字经济发展规划的通知` → `“十四五”数字经济发展规划`
    (the notice and what it publishes are one document)."""
    m = _PUBLISHES.search(title.strip())
    if m is None:
        return None
    return m.group("inner").strip().strip("《》") or None


def _own_keys(title: str | None) -> set[str]:
    """The citing document's own names: its title, the plan its notice publishes, and the title an
    order's heading ends with (`信息产业部令（第38号） 互联网电子邮件服务管理办法`)."""
    if not title:
        return set()
    keys = {_key(title)}
    inner = publishes(title)
    if inner:
        keys.add(_key(inner))
    order = _ORDER_HEADING.search(title)
    if order:
        keys.add(_key(order.group("title")))
    return {k for k in keys if k}


def _implements_by_title(cited: str, title: str | None) -> bool:
    """`北京市实施《反恐怖主义法》办法` implements 《中华人民共和国反恐怖主义法》."""
    if not title or "实施" not in title:
        return False
    key = _key(cited).removeprefix("中华人民共和国")
    return len(key) >= 3 and key in _key(title).replace("〈", "").replace("〉", "")


@dataclass(frozen=True)
class FoundReferences:
    """`find_references(text, title, number)` with the arguments it was found for: computed where
    the page is read (a worker process), used by the version stage when its arguments are the same."""

    text: str
    title: str | None
    number: str | None
    references: tuple[Reference, ...]

    @classmethod
    def of(cls, text: str, title: str | None, number: str | None) -> FoundReferences:
        return cls(text, title, number, tuple(find_references(text, title=title, number=number)))

    def for_args(self, text: str, title: str | None, number: str | None) -> list[Reference] | None:
        """The references, when found for exactly these arguments; else None (find them again)."""
        if (self.title, self.number) != (title, number) or self.text != text:
            return None
        return list(self.references)


def find_references(text: str, title: str | None = None, number: str | None = None) -> list[Reference]:
    """References to other policy documents in `text`, in text order, each once per (title,
    number, kind). The citing document's own `title` and `number` are not references of its own
    (unless it repeals an earlier edition of the same title); nor are the short names a text gives
    a document (`以下简称《行动方案》`)."""
    masked = _masked(text)
    aliases = {_key(m.group(1)) for m in _ALIAS.finditer(text)}
    found: list[tuple[int, int, str | None, str | None]] = []
    taken: list[tuple[int, int]] = []
    for m in _TITLE.finditer(text):
        cited = m.group(1).strip()
        if not is_document_title(cited) or _key(cited) in aliases:
            continue
        end, attached = m.end(), None
        after = _NUMBER_AFTER.match(text, end)
        if after is not None:
            spans = list(_number_spans(text[after.start("number") : after.start("number") + 40]))
            if spans and spans[0][0] == 0:
                attached = spans[0][2]
                end = after.start("number") + spans[0][1]
                if end < len(text) and text[end] in "）)":
                    end += 1
        found.append((m.start(), end, cited, attached))
        taken.append((m.start(), end))
    for start, end, bare in _number_spans(masked):
        if any(a <= start < b for a, b in taken):
            continue
        found.append((start, end, None, bare))
    found.sort()
    own = _own_keys(title)
    own_number = number_key(number) if number else None
    marks = (_Marks(_SENTENCE_END, masked), _Marks(_CLAUSE_END, masked))
    seen: set[tuple[str | None, str | None, str]] = set()
    out = []
    for start, end, cited, cited_number in found:
        if cited_number and cited_number == own_number:
            continue
        kind = _kind(masked, start, end, cited, marks)
        if kind is None:
            continue
        if cited and _key(cited) in own and kind != "repeals":
            continue
        if cited and kind == "cites" and _implements_by_title(cited, title):
            kind = "implements"
        identity = (_key(cited) if cited else None, cited_number, kind)
        if identity in seen:
            continue
        seen.add(identity)
        out.append(Reference(kind, cited, cited_number, _context(text, start, end, marks[0]), start, end))
    return out


def _key(title: str) -> str:
    return re.sub(r"[\s\"'《》“”‘’「」]", "", title)


def _context(text: str, start: int, end: int, sentences: _Marks) -> str:
    s_start, s_end = sentences.around(start, end)
    s_start = max(s_start, start - 100)
    s_end = min(s_end + 1, end + 100, len(text))
    return text[s_start:s_end].strip()
