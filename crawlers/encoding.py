"""Decoding HTML bodies from Chinese government sites (UTF-8, GBK/GB2312/GB18030, wrong headers)."""

from __future__ import annotations

import codecs
import re

import charset_normalizer

# The WHATWG Encoding Standard's labels (https://encoding.spec.whatwg.org/#names-and-labels), each
# mapped to the Python codec that decodes it. Only these are charset labels: codecs.lookup() also
# knows codecs that are no text encoding of the web at all (undefined, idna, punycode, rot13,
# base64, zlib, uu, hex, bz2, quopri, utf-7, unicode_escape...), which raise on decoding or turn a
# page into something else. A label not listed here is unknown: detection decides.
_WHATWG: dict[str, str] = {
    "utf-8": "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8",
    "cp866": "866 cp866 csibm866 ibm866",
    "iso8859-2": (
        "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987 l2 latin2"
    ),
    "iso8859-3": (
        "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988 l3 latin3"
    ),
    "iso8859-4": (
        "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988 l4 latin4"
    ),
    "iso8859-5": (
        "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 iso_8859-5 iso_8859-5:1988"
    ),
    "iso8859-6": (
        "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 "
        "iso-8859-6-e iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 "
        "iso_8859-6:1987"
    ),
    "iso8859-7": (
        "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 "
        "iso8859-7 iso88597 iso_8859-7 iso_8859-7:1987 sun_eu_greek"
    ),
    "iso8859-8": (
        "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 "
        "iso8859-8 iso88598 iso_8859-8 iso_8859-8:1988 visual csiso88598i iso-8859-8-i "
        "logical"
    ),
    "iso8859-10": "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    "iso8859-13": "iso-8859-13 iso8859-13 iso885913",
    "iso8859-14": "iso-8859-14 iso8859-14 iso885914",
    "iso8859-15": "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9",
    "iso8859-16": "iso-8859-16",
    "koi8-r": "cskoi8r koi koi8 koi8-r koi8_r",
    "koi8-u": "koi8-ru koi8-u",
    "mac-roman": "csmacintosh mac macintosh x-mac-roman",
    "cp874": "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874",
    "cp1250": "cp1250 windows-1250 x-cp1250",
    "cp1251": "cp1251 windows-1251 x-cp1251",
    "cp1252": (
        "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 "
        "iso8859-1 iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 "
        "x-cp1252"
    ),
    "cp1253": "cp1253 windows-1253 x-cp1253",
    "cp1254": (
        "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 "
        "iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254"
    ),
    "cp1255": "cp1255 windows-1255 x-cp1255",
    "cp1256": "cp1256 windows-1256 x-cp1256",
    "cp1257": "cp1257 windows-1257 x-cp1257",
    "cp1258": "cp1258 windows-1258 x-cp1258",
    "mac-cyrillic": "x-mac-cyrillic x-mac-ukrainian",
    # GBK's labels (gb2312 among them) and gb18030: gb2312 and gbk are subsets of gb18030, and pages
    # labelled gb2312 routinely use GBK-only characters. cp936/ms936/windows-936 and euc-cn are no
    # WHATWG labels but the same character set under names Windows and Java servers send.
    "gb18030": (
        "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk "
        "gb18030 cp936 ms936 windows-936 euc-cn x-euc-cn x-gb18030"
    ),
    "big5hkscs": "big5 big5-hkscs cn-big5 csbig5 x-x-big5",  # WHATWG's Big5 is Big5-HKSCS
    "euc_jp": "cseucpkdfmtjapanese euc-jp x-euc-jp",
    "iso2022_jp": "csiso2022jp iso-2022-jp",
    "cp932": "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    "cp949": (
        "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 "
        "ksc5601 ksc_5601 windows-949"
    ),
    # UTF-16 labels read as UTF-8 (below): a label claiming UTF-16 on a byte stream that could be
    # sniffed as ASCII is a lie (WHATWG, for <meta>; here for the header too: a real UTF-16 page
    # starts with a BOM, which wins).
    "utf-16": "unicodefffe utf-16be csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le",
    "x-user-defined": "x-user-defined",
    # The WHATWG "replacement" labels (csiso2022kr, hz-gb-2312, iso-2022-cn, iso-2022-cn-ext,
    # iso-2022-kr, replacement) decode to a single U+FFFD in a browser: unknown here, detection decides.
}
_LABELS: dict[str, str] = {
    label: ("utf-8" if codec == "utf-16" else codec)
    for codec, labels in _WHATWG.items()
    for label in labels.split()
}


def _python_names() -> dict[str, str]:
    """Python's name of each web encoding's codec and of its labels Python knows -> the codec."""
    names: dict[str, str] = {}
    for codec, labels in _WHATWG.items():
        for label in (codec, *labels.split()):
            try:
                names.setdefault(codecs.lookup(label).name, _LABELS.get(label, codec))
            except LookupError:
                continue
    return names


# What a detector's answer or a configured override may name instead of a label: "utf_8", "gbk".
_PYTHON_NAMES = _python_names()

# Labels that servers send by default and that say nothing about a Chinese page (WHATWG: windows-1252).
_WEAK_LABELS = {"cp1252"}
# WHATWG x-user-defined: ASCII, and bytes 0x80-0xFF to U+F780-U+F7FF.
_USER_DEFINED = {b: 0xF780 + b - 0x80 for b in range(0x80, 0x100)}

_META_RE = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([-\w.:]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def normalize_charset(label: str | None) -> str | None:
    """The Python codec for a WHATWG charset label, or None when it is no web encoding's label.

    GB2312/GBK labels map to gb18030. Labels only Python knows (undefined, idna, rot13, base64,
    utf-7...) are None: unknown, as in a browser.
    """
    if not label:
        return None
    return _LABELS.get(label.strip().strip("\"'").strip().lower())


def web_codec(name: str | None) -> str | None:
    """A WHATWG label, or the Python name of a web encoding's codec ("utf_8", "gb18030", "cp1251"):
    its codec, else None. For names from configuration or from a detector, not from a page."""
    codec = normalize_charset(name)
    if codec is not None or not name:
        return codec
    try:
        return _PYTHON_NAMES.get(codecs.lookup(name.strip()).name)
    except (LookupError, ValueError, TypeError):
        return None


def decode(body: bytes, codec: str, errors: str = "strict") -> str:
    """`body` decoded with a codec named by normalize_charset / web_codec."""
    if codec == "x-user-defined":
        return body.decode("latin-1").translate(_USER_DEFINED)
    return body.decode(codec, errors)


def meta_charset(body: bytes) -> str | None:
    """The charset named by <meta charset> / <meta http-equiv content="...; charset="> in the first 4 KB."""
    m = _META_RE.search(body[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return decode(body, codec)
    except UnicodeDecodeError:
        return None


def _nearly(body: bytes, codec: str) -> tuple[str, int] | None:
    """Decode with replacement when only a stray byte or two is broken (a corrupt page, not a wrong codec)."""
    text = decode(body, codec, "replace")
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
        codec = web_codec(override)
        if codec is None:
            raise LookupError(f"unknown encoding override: {override}")
        text = decode(body, codec, "replace")
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
            # ISO-2022-JP is 7-bit: its escape sequences switch to JIS; any other codec reads ASCII as ASCII
            text = (_strict(body, codec) if codec == "iso2022_jp" else None) or body.decode("ascii")
            return text, codec, source, 0
        if codec != "utf-8" and valid_utf8:
            continue  # a non-UTF-8 label on a body that is valid UTF-8 with multibyte text: the label lies
        strict = _strict(body, codec)
        if strict is not None:
            return strict, codec, source, 0
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
    detected = web_codec(best.encoding) if best is not None else None
    if detected is not None:
        strict = _strict(body, detected)
        if strict is not None:
            return strict, detected, "detected", 0
        tried.append((detected, "detected"))
    if gb is not None:
        return gb, "gb18030", "detected", 0
    for codec, source in weak:
        strict = _strict(body, codec)
        if strict is not None:
            return strict, codec, source, 0

    # Nothing decodes cleanly: fewest replacement characters wins, earlier source on ties.
    candidates = [*tried, ("utf-8", "detected"), ("gb18030", "detected")]
    best_choice: tuple[str, str, str, int] | None = None
    for codec, source in candidates:
        text = decode(body, codec, "replace")
        bad = text.count("\ufffd")
        if best_choice is None or bad < best_choice[3]:
            best_choice = (text, codec, source, bad)
    assert best_choice is not None
    return best_choice
