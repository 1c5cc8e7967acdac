"""policydiff: pure-function diffs of two versions of a (Chinese) policy text.

See :mod:`policydiff.diff` for the algorithm and the significance formula, :mod:`policydiff.render`
for the output formats (by name: :func:`get_renderer`).

>>> from policywatch.policydiff import diff_texts, get_renderer
>>> diff = diff_texts(["第一条 数据要素。第二条 附则。"], ["第一条 数据要素市场。第二条 附则。"])
>>> print(get_renderer("text").render(diff), end="")
! 第一条 数据要素{+市场+}。
  第二条 附则。
"""

from .diff import Block, DocumentDiff, Span, apply_diff, diff_sentences, diff_texts, significance_of
from .render import (
    HtmlRenderer,
    Renderer,
    TextRenderer,
    UnknownFormatError,
    get_renderer,
    register,
    render_html,
    render_text,
    renderers,
)
from .text import split_sentences, tokenize

__all__ = [
    "Block",
    "DocumentDiff",
    "HtmlRenderer",
    "Renderer",
    "Span",
    "TextRenderer",
    "UnknownFormatError",
    "apply_diff",
    "diff_sentences",
    "diff_texts",
    "get_renderer",
    "register",
    "render_html",
    "render_text",
    "renderers",
    "significance_of",
    "split_sentences",
    "tokenize",
]
