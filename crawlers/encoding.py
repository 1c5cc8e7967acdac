"""Decoding HTML bodies from Chinese government sites (UTF-8, GBK/GB2312/GB18030, wrong headers)."""

from __future__ import annotations

import codecs
import re

import charset_normalizer

# Labels codecs.lookup() does not know (WHATWG Encoding Standard spellings seen in the wild).
_ALIASES = {
    "x-gbk": "gbk",
    "csgbk": "gbk",
    "gb_2312-80": "gb2312",
    "gb_2312": "gb2312",
    "csgb2312": "gb2312",
    "csiso58gb231280": "gb2312",
    "x-gb18030": "gb18030",
    "unicode-1-1-utf-8": "utf-8",
    "unicode11utf8": "utf-8",
    "unicode20utf8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "x-euc-cn": "gb2312",
}
# gb2312 and gbk are subsets of gb18030: pages labelled gb2312 routinely use GBK-only characters.
_GB_FAMILY = {"gb2312", "gbk", "gb18030"}
# Labels that servers send by default and that say nothing about a Chinese page (WHATWG: windows-1252).
_WEAK_LABELS = {"iso8859-1", "cp1252", "ascii", "latin-1"}

_META_RE = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([-\w.:]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def normalize_charset(label: str | None) -> str | None:
    """A Python codec name for a charset label, or None when unknown. GB labels map to gb18030."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name in _GB_FAMILY:
        return "gb18030"
    if name.startswith("utf-16") or name.startswith("utf-32"):
        # A meta/header claiming UTF-16 on a byte stream we could sniff as ASCII is a lie (WHATWG).
        return "utf-8"
    return name


def meta_charset(body: bytes) -> str | None:
    """The charset named by <meta charset> / <meta http-equiv content="...; charset="> in the first 4 KB."""
    m = _META_RE.search(body[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _nearly(body: bytes, codec: str) -> tuple[str, int] | None:
    """Decode with replacement when only a stray byte or two is broken (a corrupt page, not a wrong codec)."""
    try:
        text = body.decode(codec, errors="replace")
    except LookupError:
        return None
    bad = text.count("\ufffd")
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    if bad <= max(2, non_ascii // 200):
        return text, bad
    return None


def _mostly_cjk(text: str) -> bool:
    """True when at least 80% of the non-ASCII characters are CJK ideographs or CJK/full-width punctuation."""
    non_ascii = cjk = 0
    for ch in text:
        o = ord(ch)
        if o < 128:
            continue
        non_ascii += 1
        if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF:
            cjk += 1
    return non_ascii > 0 and cjk >= 0.8 * non_ascii


def _is_valid_utf8_with_non_ascii(body: bytes) -> bool:
    """Valid UTF-8 with multibyte text, unless it is really a short GBK text that happens to be valid UTF-8.

    GBK "通知" (CD A8 D6 AA) is also valid UTF-8 ("֪ͨ"): such accidents decode to combining marks,
    Greek, Cyrillic, Hebrew, Arabic (U+0300-U+07FF) while GB18030 gives Chinese. Accented Latin
    text stays UTF-8.
    """
    if body.isascii():
        return False
    text = _strict(body, "utf-8")
    if text is None:
        return False
    if all(0x300 <= ord(ch) <= 0x7FF for ch in text if ord(ch) > 127):
        gb = _strict(body, "gb18030")
        if gb is not None and _mostly_cjk(gb):
            return False
    return True


def decode_html(
    body: bytes, header_charset: str | None, override: str | None = None
) -> tuple[str, str, str, int]:
    """Decode an HTML body: (text, encoding, encoding_source, replacement_chars).

    Order: explicit override; BOM; HTTP header charset; <meta> charset in the first 4 KB; detection
    (UTF-8, then charset-normalizer). A declared charset that does not decode strictly (a wrong
    header) falls through to the next source, unless only a byte or two are broken. When nothing
    decodes cleanly, the candidate with the fewest U+FFFD wins.
    """
    if override:
        codec = normalize_charset(override)
        if codec is None:
            raise LookupError(f"unknown encoding override: {override}")
        text = body.decode(codec, errors="replace")
        return text, codec, "override", text.count("\ufffd")

    for bom, codec in _BOMS:
        if body.startswith(bom):
            text = body[len(bom) :].decode(codec, errors="replace")
            return text, codec, "detected", text.count("\ufffd")

    valid_utf8 = _is_valid_utf8_with_non_ascii(body)
    declared: list[tuple[str, str]] = []
    weak: list[tuple[str, str]] = []
    for label, source in ((header_charset, "header"), (meta_charset(body), "meta")):
        codec = normalize_charset(label)
        if codec is None:
            continue
        (weak if codec in _WEAK_LABELS else declared).append((codec, source))

    tried: list[tuple[str, str]] = []
    for codec, source in declared:
        tried.append((codec, source))
        if body.isascii():
            return body.decode("ascii"), codec, source, 0
        if codec != "utf-8" and valid_utf8:
            continue  # a non-UTF-8 label on a body that is valid UTF-8 with multibyte text: the label lies
        text = _strict(body, codec)
        if text is not None:
            return text, codec, source, 0
        near = _nearly(body, codec)
        if near is not None:
            return near[0], codec, source, near[1]

    # Detection.
    if body.isascii():
        return body.decode("ascii"), "utf-8", "detected", 0
    if valid_utf8:
        return body.decode("utf-8"), "utf-8", "detected", 0
    near = None if _strict(body, "utf-8") is not None else _nearly(body, "utf-8")
    if near is not None:
        return near[0], "utf-8", "detected", near[1]
    # Prior for Chinese government sites: a body that decodes strictly as GB18030 into Chinese text
    # is GB18030 (charset-normalizer guesses wrong on short samples such as a title alone).
    gb = _strict(body, "gb18030")
    if gb is not None and _mostly_cjk(gb):
        return gb, "gb18030", "detected", 0
    best = charset_normalizer.from_bytes(body[:200_000]).best()
    detected = normalize_charset(best.encoding) if best is not None else None
    if detected is not None:
        text = _strict(body, detected)
        if text is not None:
            return text, detected, "detected", 0
        tried.append((detected, "detected"))
    if gb is not None:
        return gb, "gb18030", "detected", 0
    for codec, source in weak:
        text = _strict(body, codec)
        if text is not None:
            return text, codec, source, 0

    # Nothing decodes cleanly: fewest replacement characters wins, earlier source on ties.
    candidates = [*tried, ("utf-8", "detected"), ("gb18030", "detected")]
    best_choice: tuple[str, str, str, int] | None = None
    for codec, source in candidates:
        text = body.decode(codec, errors="replace")
        bad = text.count("\ufffd")
        if best_choice is None or bad < best_choice[3]:
            best_choice = (text, codec, source, bad)
    assert best_choice is not None
    return best_choice
