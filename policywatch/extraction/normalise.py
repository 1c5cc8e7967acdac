"""Text normalisation for comparing policy texts across fetches and reposts.

Two renderings of one policy text must normalise to the same string although they differ in
punctuation width (，/,), quote and dash variants, indentation (U+3000, &nbsp;), invisible
characters and line wrapping inside Chinese text. `normalise_text` is for comparison and hashing
only: display text keeps its original punctuation.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

__all__ = ["content_hash", "fold_whitespace", "hash_normalised", "normalise_paragraphs", "normalise_text"]

# Invisible characters that carry no text: deleted (not turned into a space), so "5\u200bG" == "5G".
# Control characters (C0 but the whitespace ones, DEL, C1 but NEL) and bidirectional overrides /
# isolates / marks are deleted too: never text in a policy page, and page text is untrusted (an
# escape sequence or a right-to-left override must not reach a terminal, a mail or a web page).
_ZERO_WIDTH = re.compile(
    "[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
    "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"
)

# Applied after NFKC (which already maps full-width ASCII such as ，：（） and U+3000 / nbsp).
_CHAR_MAP = {
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "〝": '"',
    "〞": '"',
    "＂": '"',
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "—": "-",
    "–": "-",
    "―": "-",
    "‐": "-",
    "‒": "-",
    "−": "-",
    "･": "·",
    "・": "·",
    "‧": "·",
    "…": "...",
    "⋯": "...",
}
# (str.translate with a dict is slow on long CJK text; a regex only calls back on matches.)
_CHAR_RE = re.compile("|".join(map(re.escape, _CHAR_MAP)))

_WS_RUN = re.compile(r"\s+")

# CJK ideographs, kana, hangul, and CJK / full-width punctuation ranges.
_CJK = (
    "\u2e80-\u2fdf"  # radicals
    "\u3000-\u303f"  # CJK symbols and punctuation: 、。〈〉《》「」『』【】〔〕〖〗
    "\u3040-\u30ff"  # kana
    "\u3100-\u312f\u31a0-\u31bf"  # bopomofo
    "\u3200-\u33ff"  # enclosed CJK, compatibility
    "\u3400-\u4dbf"  # ext A
    "\u4e00-\u9fff"  # unified ideographs
    "\uac00-\ud7af"  # hangul
    "\uf900-\ufaff"  # compatibility ideographs
    "\ufe10-\ufe1f\ufe30-\ufe6f"  # vertical / small form variants
    "\uff00-\uffef"  # full-width forms (the ones NFKC keeps)
    "\U00020000-\U0003134f"  # ext B-G
    "·"
    "\u2014\u2015\u2018\u2019\u201c\u201d\u2026"  # —― ‘’ “” …: full-width punctuation in GB2312 text
)
# ASCII punctuation that full-width punctuation becomes under NFKC (or that half-width pages use).
_ASCII_PUNCT = "\"'()\\[\\]{},.:;!?%"
# A space next to a CJK character, or next to ASCII punctuation whose other side is CJK
# ('"十四五" GDP' == '“十四五”GDP'; '数字经济, GDP' == '数字经济，GDP'; 'economy, GDP' keeps its space).
_SPACE_NEXT_TO_CJK = re.compile(
    f"(?<=[{_CJK}]) | (?=[{_CJK}])|(?<=[{_CJK}][{_ASCII_PUNCT}]) | (?=[{_ASCII_PUNCT}][{_CJK}])"
)


# A space before closing punctuation or after an opening bracket ("8.8 %", "( 一 )") is never text:
# Word-pasted pages put one wherever a <span> ends.
_SPACE_AT_PUNCT = re.compile(r" (?=[%,.:;!?)\]}])|(?<=[(\[{]) ")


def fold_whitespace(text: str) -> str:
    """Delete zero-width and control characters and fold every whitespace run to one space; strip.

    Display-level cleaning only: punctuation and width are kept as they are.
    """
    return " ".join(_ZERO_WIDTH.sub("", text).split())


def _remove_spaces_next_to_cjk(text: str) -> str:
    while " " in text:  # a removal can expose another ('x " 中' → 'x "中' → 'x"中')
        shorter = _SPACE_NEXT_TO_CJK.sub("", text)
        if shorter == text:
            break
        text = shorter
    return text


def _normalise_once(text: str) -> str:
    text = " ".join(_ZERO_WIDTH.sub("", text).split())
    # Before NFKC, while full-width punctuation (，（）：) is still recognisably CJK...
    text = _remove_spaces_next_to_cjk(text)
    text = unicodedata.normalize("NFKC", text)
    text = _CHAR_RE.sub(lambda m: _CHAR_MAP[m.group()], text)
    # ...and after, for what NFKC produced (and for half-width pages).
    return _SPACE_AT_PUNCT.sub("", _remove_spaces_next_to_cjk(" ".join(text.split())))


def normalise_text(text: str) -> str:
    """Comparison form of `text`; idempotent.

    Zero-width characters deleted; whitespace (U+3000, nbsp, newlines...) folded to one space; a
    space next to a CJK character or CJK / full-width punctuation removed (wrapping inside Chinese
    text does not count), also next to ASCII punctuation whose other side is CJK; NFKC; quote /
    dash / middle-dot / ellipsis variants unified; no space before closing punctuation or after an
    opening bracket; stripped.
    """
    out = _normalise_once(text)
    # NFKC can turn a character into CJK (🈀 → ほか) or compose across a deleted one; repeat until
    # stable so that the function is idempotent. The second pass almost always changes nothing.
    for _ in range(4):
        again = _normalise_once(out)
        if again == out:
            break
        out = again
    return out


def normalise_paragraphs(paragraphs: Iterable[str]) -> list[str]:
    """`normalise_text` each paragraph; drop the ones that become empty."""
    return [n for n in map(normalise_text, paragraphs) if n]


def content_hash(title: str, paragraphs: Iterable[str]) -> str:
    """sha256 hex of the normalised title, a newline, and the normalised paragraphs joined by newlines."""
    return hash_normalised(normalise_text(title), normalise_paragraphs(paragraphs))


def hash_normalised(normalised_title: str, normalised_paragraphs: Iterable[str]) -> str:
    """`content_hash` of a text whose title and paragraphs are normalised already (normalising is
    most of the cost: a caller holding the normalised paragraphs should not pay for it twice)."""
    payload = normalised_title + "\n" + "\n".join(normalised_paragraphs)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
