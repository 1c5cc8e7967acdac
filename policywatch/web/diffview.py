"""The diff page's model: rows for a side-by-side and an inline view of a policydiff DocumentDiff.

policydiff renders inline HTML for e-mail (inline styles, fixed folding); the web page needs both
columns, foldable unchanged stretches (<details>, no JavaScript) and CSS classes, so it builds its
own rows from the diff's public blocks and spans. Every piece of page text is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from policywatch.policydiff import Block, DocumentDiff, Span, split_sentences


@dataclass(frozen=True)
class DiffRow:
    op: str  # equal | replace | insert | delete | move
    old: Markup  # left column ("" when the sentence is not on the old side)
    new: Markup  # right column
    inline: Markup  # one column: deletions and insertions marked in place
    note: str = ""  # "moved from paragraph 3"


@dataclass(frozen=True)
class Fold:
    """A run of unchanged sentences shown collapsed."""

    rows: tuple[DiffRow, ...]

    @property
    def label(self) -> str:
        n = len(self.rows)
        return f"{n} unchanged sentence{'s' if n != 1 else ''} · 未改动 {n} 句"


Section = DiffRow | Fold


def _wrap(tag: str, text: str) -> Markup:
    return Markup(f'<{tag} class="pw-{tag}">') + escape(text) + Markup(f"</{tag}>")


def _marked(text: str, ranges: Sequence[tuple[int, int]], tag: str) -> Markup:
    """`text` escaped with the given character ranges wrapped in <del> or <ins>."""
    out: list[Markup] = []
    pos = 0
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if start < pos:  # never overlap; guards against malformed spans
            start = pos
        out.append(escape(text[pos:start]))
        out.append(_wrap(tag, text[start:end]))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _inline(block: Block) -> Markup:
    """Old and new in one line: unchanged text once, each change as <del>old</del><ins>new</ins>."""
    old, new = block.old or "", block.new or ""
    out: list[Markup] = []
    pos = 0
    spans: list[Span] = sorted(block.spans, key=lambda s: (s.new_start, s.old_start))
    for span in spans:
        if span.new_start > pos:
            out.append(escape(new[pos : span.new_start]))
        if span.old_end > span.old_start:
            out.append(_wrap("del", old[span.old_start : span.old_end]))
        if span.new_end > span.new_start:
            out.append(_wrap("ins", new[span.new_start : span.new_end]))
        pos = max(pos, span.new_end)
    out.append(escape(new[pos:]))
    return Markup("").join(out)


def _row(block: Block) -> DiffRow:
    if block.op == "insert":
        ins = _wrap("ins", block.new or "")
        return DiffRow("insert", Markup(""), ins, ins)
    if block.op == "delete":
        dele = _wrap("del", block.old or "")
        return DiffRow("delete", dele, Markup(""), dele)
    old = _marked(block.old or "", [(s.old_start, s.old_end) for s in block.spans], "del")
    new = _marked(block.new or "", [(s.new_start, s.new_end) for s in block.spans], "ins")
    note = ""
    if block.op == "move":
        para = block.old_paragraph + 1 if block.old_paragraph is not None else None
        note = f"moved from paragraph {para} · 移自第 {para} 段" if para else "moved · 移动"
    return DiffRow(block.op, old, new, _inline(block), note)


def diff_rows(diff: DocumentDiff) -> list[DiffRow]:
    """Sentence-level rows in the new text's reading order; equal paragraphs split into sentences."""
    rows: list[DiffRow] = []
    for block in diff.blocks:
        if block.op == "equal":
            for sentence in split_sentences(block.new or ""):
                text = escape(sentence)
                rows.append(DiffRow("equal", text, text, text))
        else:
            rows.append(_row(block))
    return rows


def fold(rows: Sequence[DiffRow], context: int = 2) -> list[Section]:
    """Keep `context` unchanged sentences around each change; fold longer unchanged runs."""
    context = max(0, context)
    keep = [False] * len(rows)
    for i, row in enumerate(rows):
        if row.op != "equal":
            for k in range(max(0, i - context), min(len(rows), i + context + 1)):
                keep[k] = True
    sections: list[Section] = []
    run: list[DiffRow] = []
    for row, shown in zip(rows, keep, strict=True):
        if shown:
            if run:
                sections.append(Fold(tuple(run)))
                run = []
            sections.append(row)
        else:
            run.append(row)
    if run:
        sections.append(Fold(tuple(run)))
    return sections


def diff_sections(diff: DocumentDiff, context: int = 2) -> list[Section]:
    return fold(diff_rows(diff), context)


def change_counts(diff: DocumentDiff) -> dict[str, int]:
    counts = {"replace": 0, "insert": 0, "delete": 0, "move": 0}
    for block in diff.changes:
        counts[block.op] = counts.get(block.op, 0) + 1
    return counts
