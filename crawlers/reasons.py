"""Error reasons built from what a site sent are shown in terminals, logs and web pages: neutralised."""

from __future__ import annotations

import unicodedata

# Characters that steer a terminal or reorder text: C0 and C1 controls (ESC, BEL, CSI, CR, LF,
# TAB... none excepted), format characters (bidi overrides and isolates, zero-width ones), line
# and paragraph separators, lone surrogates.
_UNSAFE = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))
MAX_REASON = 500


def _escape(ch: str) -> str:
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def safe_reason(text: str, limit: int = MAX_REASON) -> str:
    """`text` with every control or format character escaped as repr does (ESC -> \\x1b, U+202E ->
    \\u202e), cut to `limit` characters."""
    if text.isascii() and text.isprintable():
        out = text
    else:
        out = "".join(_escape(ch) if unicodedata.category(ch) in _UNSAFE else ch for ch in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"
