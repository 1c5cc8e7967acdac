"""What marks page chrome and body containers: shared by extraction and the page fingerprint.

Kept apart from extraction.document (BeautifulSoup) so that a cycle whose pages are all unchanged
never imports BeautifulSoup (see extraction.equivalence).
"""

from __future__ import annotations

import re

# Body containers of Chinese government CMSs, most specific first.
CMS_CONTAINERS: tuple[str, ...] = (
    "#UCAP-CONTENT",
    ".TRS_Editor",
    ".TRS_UEDITOR",
    ".pages_content",
    "#zoom",
    ".article-content",
    ".article",
    "#content",
    ".content",
)
_JUNK_TAGS = (
    "script",
    "style",
    "noscript",
    "iframe",
    "frame",
    "template",
    "object",
    "embed",
    "svg",
    "canvas",
    "select",
    "button",
    "input",
    "textarea",
    "map",
)
# id/class tokens that mark chrome. A token is a run of letters/digits, camelCase split.
_CHROME_TOKEN_PARTS = (
    "crumb",
    "bread",
    "sidebar",
    "related",
    "relate",
    "xgwz",
    "xglj",
    "xgxx",
    "visit",
    "counter",
    "print",
    "dayin",
    "share",
    "fenxiang",
    "footer",
    "copyright",
    "fontsize",
    "zihao",
    "mianbao",
    "guanbi",
    "disclaimer",
    "shenming",
    "mianze",
)
_CHROME_TOKENS = frozenset(
    {
        "side",
        "position",
        "location",
        "weizhi",
        "dqwz",
        "count",
        "hits",
        "click",
        "close",
        "font",
        "foot",
        "bottom",
        "nav",
        "navbar",
        "subnav",
        "topnav",
        "mainnav",
        "menu",
        "toolbar",
        "tool",
        "tools",
    }
)
_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])")

# CSS-framework utility classes ("border-bottom", "font-weight-bold", "position-relative") say
# nothing about the role of an element.
_UTILITY_CLASS = re.compile(
    r"^(?:position|border|fixed|sticky|font|text|float|align|justify|bg|d|flex|rounded|shadow|w|h|"
    r"[mp][trblxy]?|col|order|overflow|visible|invisible|is|has|u)-",
    re.I,
)


_CHROME_PART = re.compile("|".join(_CHROME_TOKEN_PARTS))


def _is_chrome_by_name(tokens: list[str]) -> bool:
    return any(tok in _CHROME_TOKENS or _CHROME_PART.search(tok) for tok in tokens)
