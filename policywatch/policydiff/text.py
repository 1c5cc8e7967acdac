"""Sentence splitting and tokenisation for already-normalised (NFKC, whitespace-folded) Chinese text.

Both functions are lossless: joining their output gives back the input exactly.
"""

from __future__ import annotations

import re

__all__ = ["CLOSERS", "TERMINATORS", "split_sentences", "tokenize"]

#: Characters that end a sentence. NFKC turns the full-width ！？； into !?; but 。 stays as it is.
TERMINATORS = "。！？；!?;"
#: Closing quotes/brackets that belong to the sentence they follow ("……的通知。”").
CLOSERS = "”’」』)）]】》〉"

_T = re.escape(TERMINATORS)
_C = re.escape(CLOSERS)
# A sentence is everything up to and including a run of terminators, the closers right after it and
# the whitespace after those; a last piece without a terminator is a sentence too.
_SENTENCE_RE = re.compile(rf"[^{_T}]*[{_T}]+[{_C}]*\s*|[^{_T}]+")

# One token: a run of ASCII letters/digits, joined across internal "." and "%" ("32.5", "v1.2") and
# across thousands separators ("8,354"); any other character is a token on its own.
_TOKEN_RE = re.compile(r"[0-9A-Za-z]+(?:[.%][0-9A-Za-z]+|(?<=[0-9]),[0-9]{3}(?![0-9]))*|.", re.S)


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph after 。！？；!?; keeping the terminator (and trailing closers/whitespace).

    ``"".join(split_sentences(p)) == p`` always holds; no returned sentence is empty.

    >>> split_sentences("第一条 数据要素。第二条 “培育市场！”第三条 附则")
    ['第一条 数据要素。', '第二条 “培育市场！”', '第三条 附则']
    >>> split_sentences("")
    []
    """
    return _SENTENCE_RE.findall(paragraph)


def count_sentences(paragraph: str) -> int:
    """``len(split_sentences(paragraph))``.

    >>> count_sentences("第一条 数据要素。第二条 培育市场；第三条 附则。")
    3
    """
    return len(_SENTENCE_RE.findall(paragraph))


def tokenize(text: str) -> list[str]:
    """Split text into diff tokens: runs of ASCII digits/letters (``32.5``, ``8,354``, ``GDP``) are one
    token, every other character is its own token. ``"".join(tokenize(t)) == t``.

    >>> tokenize("数据要素市场8,354亿元，增长32.5%")
    ['数', '据', '要', '素', '市', '场', '8,354', '亿', '元', '，', '增', '长', '32.5', '%']
    """
    return _TOKEN_RE.findall(text)
