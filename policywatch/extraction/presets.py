"""Per-site extraction presets: where the body of a page is when the generic rules are not enough.

A preset names the body containers of one site's pages, most specific first. It compiles to one CSS
selector (`preset_selector`) that `extract_document(html, url, content_selector=...)` understands,
so a source configured with `preset: nda` is extracted exactly like one with that selector. The
metadata the generic extractor already reads (meta ArticleTitle / PubDate / ContentSource of TRS
and Hanweb CMSs, the gov.cn 发文字号 table) needs no preset.

The structures come from public third-party scrapers of these sites, not from the live pages (this
machine cannot reach them): see the README, "Sources and the demo".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PRESETS", "Preset", "preset_selector", "priority_selector"]


@dataclass(frozen=True)
class Preset:
    name: str
    site: str  # whose pages
    body: tuple[str, ...]  # body containers, most specific first
    notes: str = ""

    @property
    def selector(self) -> str:
        return priority_selector(self.body)


def priority_selector(selectors: Sequence[str]) -> str:
    """One CSS selector that matches the first of `selectors` present in the page.

    A plain selector list ("a, b") matches in document order, so an outer `div.article` would win
    over the `div.TRS_Editor` inside it. Each later alternative is guarded by
    `:root:not(:has(earlier))` for every earlier one, so it only applies when none of them matches
    anywhere. soupsieve accepts only compound selectors inside :has(), so each selector must be one
    compound selector (`div.TRS_Editor`, `#UCAP-CONTENT`), without combinators.
    """
    if not selectors:
        raise ValueError("a preset needs at least one body selector")
    for selector in selectors:
        if _COMBINATOR.search(selector.strip()):
            raise ValueError(f"a preset selector must be one compound selector, not {selector!r}")
    parts = [selectors[0]]
    for i, selector in enumerate(selectors[1:], start=1):
        guards = "".join(f":not(:has({earlier}))" for earlier in selectors[:i])
        parts.append(f":root{guards} {selector}")
    return ", ".join(parts)


_COMBINATOR = re.compile(r"[\s>+~,]")


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "gov-cn",
            "www.gov.cn (国务院文件, /zhengce/content/…)",
            ("#UCAP-CONTENT",),
            "body in #UCAP-CONTENT (a div, or a td on older pages); the 索引号/发文机关/发文字号 table "
            "(table.bd1) is read by the generic extractor; a mobile copy of the body may repeat the id",
        ),
        Preset(
            "nda",
            "www.nda.gov.cn (国家数据局, /sjj/…/MMDD/…_pc.html)",
            ("div.TRS_Editor", "div.article"),
            "TRS pages: meta ArticleTitle / PubDate / ContentSource, h1 and li.source inside div.article, "
            "the body in a div.TRS_Editor inside it",
        ),
        Preset(
            "ndrc",
            "www.ndrc.gov.cn (国家发展改革委, /xxgk/zcfb/…/tYYYYMMDD_N.html)",
            ("div.article_con", "div.TRS_Editor"),
            "TRS pages: the body in div.article_con, a div.TRS_Editor inside on most",
        ),
        Preset(
            "miit",
            "www.miit.gov.cn (工业和信息化部, …/art/YYYY/art_<32 hex>.html)",
            ("#con_con",),
            "title in #con_title, date in #con_time, meta SiteName / ContentSource",
        ),
        Preset(
            "guizhou",
            "www.guizhou.gov.cn (贵州省人民政府, /zwgk/zcfg/…/tYYYYMMDD_N.html)",
            ("#Zoom",),
            "TRS pages whose body id is #Zoom with a capital Z (the generic #zoom does not match it)",
        ),
        Preset(
            "eastmoney",
            "finance.eastmoney.com (东方财富, /a/<digits>.html)",
            ("#ContentBody",),
            "news reposts: keyword links injected into the body (unwrapped), a （文章来源：…） line at its end",
        ),
        Preset(
            "trs",
            "older TRS-CMS provincial pages (the demo's provincial source)",
            ("div.TRS_Editor", "div.TRS_UEDITOR", "#zoom", "#Zoom"),
        ),
    )
}


def preset_selector(name: str) -> str:
    """The compiled body selector of preset `name` (KeyError for an unknown name)."""
    return PRESETS[name].selector
