"""policydiff: pure-function diffs of two versions of a (Chinese) policy text.

See :mod:`policydiff.diff` for the algorithm and the significance formula.
"""

from .diff import Block, DocumentDiff, Span, apply_diff, diff_sentences, diff_texts, significance_of
from .render import render_html, render_text
from .text import split_sentences, tokenize

__all__ = [
    "Block",
    "DocumentDiff",
    "Span",
    "apply_diff",
    "diff_sentences",
    "diff_texts",
    "render_html",
    "render_text",
    "significance_of",
    "split_sentences",
    "tokenize",
]
