"""Plain-text and HTML renderings of a :class:`DocumentDiff`, with unchanged stretches folded."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape

from .diff import Block, DocumentDiff
from .text import split_sentences

__all__ = ["DEL_STYLE", "INS_STYLE", "render_html", "render_text"]

DEL_STYLE = "background:#ffd7d5;color:#82071e;text-decoration:line-through;margin-right:2px"
INS_STYLE = "background:#ccffd8;color:#055d20;text-decoration:none"
_WRAP_STYLE = "font-family:-apple-system,'Segoe UI','PingFang SC','Microsoft YaHei',sans-serif;font-size:14px;line-height:1.7;color:#1f2328"
_ROW_STYLE = "margin:2px 0;padding:1px 0 1px 8px;border-left:3px solid {}"
_BORDERS = {
    "equal": "transparent",
    "delete": "#cf222e",
    "insert": "#1a7f37",
    "replace": "#bf8700",
    "move": "#0969da",
}
_EQUAL_STYLE = "color:#57606a"
_FOLD_STYLE = "margin:6px 0;padding-left:8px;color:#8c959f;font-style:italic"
_MOVE_LABEL_STYLE = "display:inline-block;margin-right:6px;padding:0 4px;border-radius:3px;background:#ddf4ff;color:#0969da;font-size:12px;font-weight:bold"


def _items(diff: DocumentDiff) -> list[tuple[str, Block | None, str]]:
    """Flatten to sentence-level rows: ("equal", None, sentence) or (op, block, "")."""
    items: list[tuple[str, Block | None, str]] = []
    for b in diff.blocks:
        if b.op == "equal":
            items.extend(("equal", None, s) for s in split_sentences(b.new or ""))
        else:
            items.append((b.op, b, ""))
    return items


def _folded(items: list[tuple[str, Block | None, str]], context: int) -> Iterator[tuple[int, int]]:
    """Yield (start, end) runs of item indices: end == -1 marks a fold of `start` hidden sentences."""
    context = max(0, context)
    n = len(items)
    keep = [False] * n
    for i, (op, _, _) in enumerate(items):
        if op != "equal":
            for k in range(max(0, i - context), min(n, i + context + 1)):
                keep[k] = True
    i = 0
    while i < n:
        j = i
        while j < n and keep[j] == keep[i]:
            j += 1
        if keep[i]:
            yield i, j
        else:
            yield j - i, -1
        i = j


def _fold_label(count: int) -> str:
    return f"… ({count} unchanged sentence{'s' if count != 1 else ''}) …"


def _segments(block: Block) -> Iterator[tuple[str, str, str]]:
    """Yield ("equal", text, "") / ("change", old_text, new_text) segments of a replace/move block."""
    old, new = block.old or "", block.new or ""
    pos = 0  # unchanged text is the same on both sides; take it from the new side
    for s in sorted(block.spans, key=lambda s: (s.new_start, s.old_start)):
        if s.new_start > pos:
            yield "equal", new[pos : s.new_start], ""
        yield "change", old[s.old_start : s.old_end], new[s.new_start : s.new_end]
        pos = s.new_end
    if pos < len(new):
        yield "equal", new[pos:], ""


def _origin(block: Block) -> str:
    return f"paragraph {block.old_paragraph + 1}" if block.old_paragraph is not None else "elsewhere"


def _marked_text(block: Block) -> str:
    out = []
    for kind, a, b in _segments(block):
        if kind == "equal":
            out.append(a)
        else:
            if a:
                out.append(f"[-{a}-]")
            if b:
                out.append(f"{{+{b}+}}")
    return "".join(out)


def render_text(diff: DocumentDiff, context: int = 1) -> str:
    """Unified-style text: "  " unchanged, "- " deleted, "+ " inserted, "! " modified (with
    [-old-]{+new+} marks), "~ " moved; unchanged stretches folded to "… (N unchanged sentences) …"."""
    items = _items(diff)
    lines: list[str] = []
    for start, end in _folded(items, context):
        if end == -1:
            lines.append(_fold_label(start))
            continue
        for op, block, sentence in items[start:end]:
            if op == "equal":
                lines.append(f"  {sentence}")
            elif op == "delete":
                lines.append(f"- {block.old}")  # type: ignore[union-attr]
            elif op == "insert":
                lines.append(f"+ {block.new}")  # type: ignore[union-attr]
            elif op == "replace":
                lines.append(f"! {_marked_text(block)}")  # type: ignore[arg-type]
            else:
                lines.append(f"~ {_marked_text(block)}  (moved from {_origin(block)})")  # type: ignore[arg-type]
    return "\n".join(lines) + ("\n" if lines else "")


def _html_del(text: str) -> str:
    return f'<del class="pd-del" style="{DEL_STYLE}">{escape(text)}</del>'


def _html_ins(text: str) -> str:
    return f'<ins class="pd-ins" style="{INS_STYLE}">{escape(text)}</ins>'


def _html_inline(block: Block) -> str:
    out = []
    for kind, a, b in _segments(block):
        if kind == "equal":
            out.append(escape(a))
        else:
            if a:
                out.append(_html_del(a))
            if b:
                out.append(_html_ins(b))
    return "".join(out)


def render_html(diff: DocumentDiff, context: int = 1) -> str:
    """An HTML fragment with inline styles only; all page text is escaped."""
    items = _items(diff)
    rows: list[str] = []
    for start, end in _folded(items, context):
        if end == -1:
            rows.append(f'<div class="pd-fold" style="{_FOLD_STYLE}">{escape(_fold_label(start))}</div>')
            continue
        for op, block, sentence in items[start:end]:
            style = _ROW_STYLE.format(_BORDERS[op])
            if op == "equal":
                body = f'<span style="{_EQUAL_STYLE}">{escape(sentence)}</span>'
            elif op == "delete":
                body = _html_del(block.old or "")  # type: ignore[union-attr]
            elif op == "insert":
                body = _html_ins(block.new or "")  # type: ignore[union-attr]
            elif op == "replace":
                body = _html_inline(block)  # type: ignore[arg-type]
            else:
                body = f'<span class="pd-moved" style="{_MOVE_LABEL_STYLE}">moved 移动 ({escape(_origin(block))})</span>{_html_inline(block)}'  # type: ignore[arg-type]
            rows.append(f'<div class="pd-{op}" style="{style}">{body}</div>')
    return f'<div class="policydiff" style="{_WRAP_STYLE}">\n' + "\n".join(rows) + "\n</div>"
