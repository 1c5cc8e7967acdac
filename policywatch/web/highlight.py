"""Search hits marked inside escaped text: the text is escaped piece by piece, never as a whole
after marking, so page text can never inject markup."""

from __future__ import annotations

from markupsafe import Markup, escape


def mark_hits(text: str, needle: str) -> Markup:
    """`text` escaped, each occurrence of `needle` (ASCII either case, as search matches) in <mark>."""
    if not needle:
        return escape(text)
    lowered, folded = text.lower(), needle.lower()
    # str.lower() keeps lengths for the ASCII letters search folds; guard against anything else.
    if len(lowered) != len(text):
        lowered, folded = text, needle
    out: list[str] = []
    pos = 0
    while True:
        at = lowered.find(folded, pos)
        if at < 0:
            break
        out.append(escape(text[pos:at]))
        out.append(Markup("<mark>") + escape(text[at : at + len(needle)]) + Markup("</mark>"))
        pos = at + len(needle)
    out.append(escape(text[pos:]))
    return Markup("").join(out)
