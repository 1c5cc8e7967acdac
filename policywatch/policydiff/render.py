"""Plain-text and HTML renderings of a :class:`DocumentDiff`, with unchanged stretches folded.

The formats are also a registry of plain classes, chosen by name (as urlwatch chooses its reporters
and filters): :data:`renderers` maps a name to a :class:`Renderer`, :func:`get_renderer` looks one up
and says which names exist when the name is unknown, :func:`register` adds a format.

>>> from policywatch.policydiff import diff_texts
>>> diff = diff_texts(["第一条 数据要素。"], ["第一条 数据要素市场。"])
>>> sorted(renderers)
['html', 'text']
>>> print(get_renderer("text").render(diff), end="")
! 第一条 数据要素{+市场+}。
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import ClassVar, TypeVar

from .diff import Block, DocumentDiff
from .text import split_sentences

__all__ = [
    "DEL_STYLE",
    "INS_STYLE",
    "HtmlRenderer",
    "Renderer",
    "TextRenderer",
    "UnknownFormatError",
    "get_renderer",
    "register",
    "render_html",
    "render_text",
    "renderers",
]

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
    [-old-]{+new+} marks), "~ " moved; unchanged stretches folded to "… (N unchanged sentences) …".

    `context`: how many unchanged sentences are shown on each side of a change.

    >>> from policywatch.policydiff import diff_texts
    >>> old = ["第一条 数据要素。第二条 培育市场。第三条 规范流通。第四条 保障安全。", "第五条 施行。"]
    >>> new = ["第一条 数据要素市场。第二条 培育市场。第三条 规范流通。第四条 保障安全。"]
    >>> print(render_text(diff_texts(old, new)), end="")
    ! 第一条 数据要素{+市场+}。
      第二条 培育市场。
    … (1 unchanged sentence) …
      第四条 保障安全。
    - 第五条 施行。
    >>> print(render_text(diff_texts(old, new), context=0), end="")
    ! 第一条 数据要素{+市场+}。
    … (3 unchanged sentences) …
    - 第五条 施行。
    """
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
    r"""An HTML fragment with inline styles only (for e-mail); all page text is escaped.

    One ``<div class="pd-OP">`` per sentence row (OP: equal, insert, delete, replace, move), changed
    text in ``<del>`` / ``<ins>``; `context` as for :func:`render_text`.

    >>> import re
    >>> from policywatch.policydiff import diff_texts
    >>> html = render_html(diff_texts(["第一条 <b>数据</b>。"], ["第一条 <b>数据</b>要素。"]))
    >>> html.startswith('<div class="policydiff"')
    True
    >>> re.findall(r'<div class="pd-(\w+)"', html)
    ['replace']
    >>> re.findall(r"<(ins|del) [^>]*>([^<]*)<", html)
    [('ins', '要素')]
    >>> "&lt;b&gt;数据&lt;/b&gt;" in html  # the page's own markup is text
    True
    """
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


# --------------------------------------------------------------------------------------------------
# the formats by name


class Renderer:
    """A diff output format: subclass it with a `name` and a `render`, then :func:`register` it.

    >>> from policywatch.policydiff import diff_texts
    >>> diff = diff_texts(["第一条 数据要素。"], ["第一条 数据要素市场。"])
    >>> print(get_renderer("text").render(diff), end="")
    ! 第一条 数据要素{+市场+}。
    """

    name: ClassVar[str] = ""

    def render(self, diff: DocumentDiff, context: int = 1) -> str:
        """The diff in this format; `context`: unchanged sentences shown around each change."""
        raise NotImplementedError


#: The formats by name; add one with :func:`register`, look one up with :func:`get_renderer`.
renderers: dict[str, Renderer] = {}

_R = TypeVar("_R", bound=type[Renderer])


class UnknownFormatError(ValueError):
    """No renderer is registered under the name; the message lists the ones that are."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown diff format {name!r} (known formats: {', '.join(known) or 'none'})")
        self.name = name
        self.known = known


def register(cls: _R) -> _R:
    """Class decorator: add an instance of `cls` to :data:`renderers` under ``cls.name``.

    A name taken by another class is refused (a format silently replaced by a later import would
    change what every caller of that name gets).

    >>> from policywatch.policydiff import diff_texts
    >>> @register
    ... class Changed(Renderer):
    ...     name = "changed"
    ...     def render(self, diff, context=1):
    ...         return "; ".join(f"{b.op}: {b.new or b.old}" for b in diff.changes)
    >>> diff = diff_texts(["第一条 数据要素。第二条 附则。"], ["第一条 数据要素市场。"])
    >>> print(get_renderer("changed").render(diff))
    replace: 第一条 数据要素市场。; delete: 第二条 附则。
    >>> del renderers["changed"]  # (keeps this example from changing the registry)
    """
    name = cls.name
    if not name:
        raise ValueError(f"renderer {cls.__qualname__} has no name")
    taken = renderers.get(name)
    if taken is not None and type(taken) is not cls:
        raise ValueError(f"diff format {name!r} is already {type(taken).__qualname__}'s")
    renderers[name] = cls()
    return cls


def get_renderer(name: str) -> Renderer:
    """The renderer registered under `name`; :class:`UnknownFormatError` (a ValueError) naming the
    known formats otherwise.

    >>> get_renderer("html").name
    'html'
    >>> get_renderer("pdf")
    Traceback (most recent call last):
      ...
    policywatch.policydiff.render.UnknownFormatError: unknown diff format 'pdf' (known formats: html, text)
    """
    try:
        return renderers[name]
    except KeyError:
        raise UnknownFormatError(name, sorted(renderers)) from None


@register
class TextRenderer(Renderer):
    """:func:`render_text` by name: ``get_renderer("text")``.

    >>> from policywatch.policydiff import diff_texts
    >>> diff = diff_texts(["第一条 数据要素。"], ["第一条 数据要素市场。"])
    >>> TextRenderer().render(diff) == render_text(diff)
    True
    """

    name = "text"

    def render(self, diff: DocumentDiff, context: int = 1) -> str:
        return render_text(diff, context)


@register
class HtmlRenderer(Renderer):
    """:func:`render_html` by name: ``get_renderer("html")``.

    >>> from policywatch.policydiff import diff_texts
    >>> diff = diff_texts(["第一条 数据要素。"], ["第一条 数据要素市场。"])
    >>> HtmlRenderer().render(diff, context=0) == render_html(diff, context=0)
    True
    """

    name = "html"

    def render(self, diff: DocumentDiff, context: int = 1) -> str:
        return render_html(diff, context)
