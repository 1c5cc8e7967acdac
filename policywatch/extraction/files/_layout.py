"""Fixed-layout text (PDF, OFD) → paragraphs: lines in reading order, running headers, footers and
page numbers removed, lines joined into paragraphs by indentation and line ends only.

Page breaks play no part in where a paragraph starts or ends, so a re-paginated file (same text,
other page breaks or page size) gives the same paragraphs; nor do file metadata.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass

from ..normalise import fold_whitespace


@dataclass
class Line:
    page: int
    top: float  # distance of the line's top from the top of the page
    bottom: float
    x0: float
    x1: float
    size: float  # font size
    text: str


# "— 3 —", "- 3 -", "3", "第3页", "第 3 页 共 10 页", "3/10", "Page 3 of 10", "·3·".
_PAGE_NUMBER = re.compile(
    r"^[\s\-—–_·•.]*(?:第\s*)?\d{1,5}\s*页?\s*(?:(?:[/／]|共)\s*\d{1,5}\s*页?)?[\s\-—–_·•.]*$"
    r"|^\s*page\s*\d{1,5}(?:\s*of\s*\d{1,5})?\s*$",
    re.I,
)
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def merge_rows(lines: list[Line]) -> list[Line]:
    """Lines of one page sorted top to bottom; pieces on one baseline (table cells, text boxes side
    by side) merged into one line, left to right."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: (ln.top, ln.x0)):
        if rows:
            last = rows[-1][-1] if len(rows[-1]) == 1 else max(rows[-1], key=lambda ln: ln.bottom)
            height = min(line.bottom - line.top, last.bottom - last.top) or 1.0
            overlap = min(line.bottom, last.bottom) - max(line.top, last.top)
            if overlap > 0.5 * height:
                rows[-1].append(line)
                continue
        rows.append([line])
    out = []
    for row in rows:
        row.sort(key=lambda ln: ln.x0)
        text = row[0].text
        for prev, cur in itertools.pairwise(row):
            # A gap wider than a character is a cell or column boundary: keep a space there.
            gap = cur.x0 - prev.x1
            text += (" " if gap > 0.8 * max(prev.size, 1.0) else "") + cur.text
        out.append(
            Line(
                page=row[0].page,
                top=min(ln.top for ln in row),
                bottom=max(ln.bottom for ln in row),
                x0=row[0].x0,
                x1=max(ln.x1 for ln in row),
                size=max(ln.size for ln in row),
                text=text,
            )
        )
    return out


def _mask(text: str) -> str:
    return _DIGITS.sub("#", _SPACE.sub("", text))


def remove_running_lines(pages: list[list[Line]], *, edge: int = 2) -> tuple[list[list[Line]], int]:
    """Drop page numbers and running headers/footers: among the first and last `edge` lines of each
    page, those that look like a page number, whose text (digits masked) recurs at the top or
    bottom of at least two pages and of 40% of them, or that are set in small type (at most 80% of
    the body's size, at most 60 characters): a one-page file's running header cannot recur, and
    re-paginating onto fewer pages must not bring it into the text. Returns the pages and how many
    lines went."""
    n_pages = len(pages)
    body_size = body_font_size([ln for lines in pages for ln in lines])
    seen: Counter[tuple[str, str]] = Counter()
    for lines in pages:
        keys = {("top", _mask(ln.text)) for ln in lines[:edge]} | {
            ("bottom", _mask(ln.text)) for ln in lines[-edge:]
        }
        seen.update(keys)
    need = max(2, 0.4 * n_pages)
    removed = 0
    out = []
    for lines in pages:
        keep = []
        for i, ln in enumerate(lines):
            where = "top" if i < edge else "bottom" if i >= len(lines) - edge else None
            small = ln.size <= 0.8 * body_size and len(ln.text) <= 60
            if where and (_PAGE_NUMBER.match(ln.text) or small or seen[(where, _mask(ln.text))] >= need):
                removed += 1
                continue
            keep.append(ln)
        out.append(keep)
    return out, removed


def _mode(values: list[float]) -> float:
    return Counter(round(v) for v in values).most_common(1)[0][0] if values else 0.0


def body_font_size(lines: list[Line]) -> float:
    """The font size of most of the text (by characters)."""
    sizes: Counter[int] = Counter()
    for ln in lines:
        sizes[round(ln.size)] += len(ln.text)
    return float(sizes.most_common(1)[0][0]) if sizes else 12.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _join(a: str, b: str) -> str:
    # Chinese lines wrap anywhere (inside a number too: "到2" / "025年"): join without a space;
    # only Latin words broken at a line end get one back.
    if a and b and a[-1].isascii() and a[-1].isalpha() and b[0].isascii() and b[0].isalpha():
        return a + " " + b
    return a + b


def paragraphs_of(lines: list[Line]) -> tuple[list[str], list[Line]]:
    """Paragraphs of the body lines of all pages, in order, and the first line of each.

    A line starts a paragraph when the line before did not reach the right margin, when it is
    indented (leading spaces / U+3000, or its left edge a character right of the text's left
    margin), when it is centred, or when its font size differs from the line before."""
    if not lines:
        return [], []
    body_size = body_font_size(lines)
    left = _mode([ln.x0 for ln in lines if abs(ln.size - body_size) < 1.5]) if lines else 0.0
    right = _percentile([ln.x1 for ln in lines if abs(ln.size - body_size) < 1.5], 0.9)
    middle = (left + right) / 2
    paras: list[str] = []
    firsts: list[Line] = []
    prev: Line | None = None
    prev_centred = False
    for ln in lines:
        text = ln.text
        unit = max(ln.size, 1.0)
        indented = text[:1].isspace() or ln.x0 > left + 1.5 * unit
        # Centred: short of both margins by much the same (a first-line indent is short of one only).
        centred = (
            ln.x0 > left + 2 * unit
            and ln.x1 < right - 2 * unit
            and abs((ln.x0 + ln.x1) / 2 - middle) < 1.5 * unit
        )
        starts = (
            prev is None
            or indented
            or centred
            or prev_centred
            or prev.x1 < right - 1.2 * max(prev.size, 1.0)
            or abs(ln.size - prev.size) > 0.15 * max(ln.size, prev.size)
        )
        # A title set over two centred lines is one paragraph.
        if (
            prev is not None
            and centred
            and prev_centred
            and ln.size >= 1.2 * body_size
            and abs(ln.size - prev.size) < 0.5
            and ln.top - prev.bottom < ln.size
        ):
            starts = False
        if starts:
            paras.append(fold_whitespace(text))
            firsts.append(ln)
        else:
            paras[-1] = _join(paras[-1], fold_whitespace(text))
        prev, prev_centred = ln, centred
    keep = [(p, f) for p, f in zip(paras, firsts, strict=True) if p]
    return [p for p, _ in keep], [f for _, f in keep]


def heading_of(paragraphs: list[str], firsts: list[Line]) -> str | None:
    """The title printed at the top of the first page: the first paragraph among the first five
    set larger than the body text (a title wraps over lines of the same size: one paragraph)."""
    if not paragraphs:
        return None
    sizes: Counter[int] = Counter()
    for p, f in zip(paragraphs, firsts, strict=True):
        sizes[round(f.size)] += len(p)
    body = sizes.most_common(1)[0][0]
    for p, f in list(zip(paragraphs, firsts, strict=True))[:5]:
        if f.page == firsts[0].page and f.size >= body * 1.2 and 2 <= len(p) <= 200:
            return p
    return None
