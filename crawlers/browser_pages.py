"""What a page's HTML says about its scripts, for crawlers.browser's cheap path, and where the
fetcher remembers it.

`BrowserFetcher` (crawlers.browser) decides per page whether plain HTTP is enough: a page whose
own scripts may add content (`_may_be_filled_by_script`) goes to the browser once; a browser load
waits for scripts that fetch content (`_fetches_content`) and compares the rendered DOM with the
HTML as served (`_filled_by_script`). The answer is remembered per directory of a host (`_Host`,
`_directory`). These are pure functions of text, kept apart from the Playwright code that uses
them (crawlers.browser_load) so that they read, and can be checked, on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .challenge import visible_text
from .discover import canonical_url

_HREF_RE = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)""", re.I)


def _directory(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path.rsplit('/', 1)[0]}/"


@dataclass
class _Host:
    """What the fetcher learnt about one host."""

    cheap: bool = False  # the browser passed here and its cookies went to the plain session
    script_dirs: set[str] = field(default_factory=set)  # directories of pages filled by script
    static_dirs: set[str] = field(default_factory=set)  # directories of pages the browser left as served


def canonical_or(url: str) -> str:
    try:
        return canonical_url(url)
    except ValueError:
        return url


_INLINE_SCRIPT_RE = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
# What a script that fills a page with content calls (XHR, fetch, jQuery's loaders, Hanweb's jpage).
_FILLING_RE = re.compile(
    r"XMLHttpRequest|\bfetch\s*\(|\$\.(?:ajax|get|post|getJSON)\b|\.load\s*\(|document\.write|"
    r"dataproxy|jpage|innerHTML\s*=|insertAdjacentHTML|appendChild",
    re.I,
)


# Of those, what fetches content over the network (the page must then be given time to settle).
_FETCHING_RE = re.compile(
    r"XMLHttpRequest|\bfetch\s*\(|\$\.(?:ajax|get|post|getJSON)\b|\.load\s*\(|dataproxy|jpage", re.I
)


def _fetches_content(html: str) -> bool:
    """Whether a page's scripts fetch content after the load event (XHR, fetch, jQuery, jpage)."""
    for attrs, body in _INLINE_SCRIPT_RE.findall(html):
        if _FETCHING_RE.search(body) or (
            "src" in attrs.lower() and re.search(r"jpage|dataproxy", attrs, re.I)
        ):
            return True
    return False


def _may_be_filled_by_script(html: str) -> bool:
    """Whether a page's own scripts may add content to it (checked on the cheap path's answers
    for directories the browser has not seen yet: such a page goes to the browser once)."""
    for attrs, body in _INLINE_SCRIPT_RE.findall(html):
        if _FILLING_RE.search(body) or (
            "src" in attrs.lower() and re.search(r"jpage|dataproxy", attrs, re.I)
        ):
            return True
    return False


def _filled_by_script(raw: str, rendered: str) -> bool:
    """Whether scripts added links or text to the page (a list filled by XHR, document.write …)."""
    raw_links = set(_HREF_RE.findall(raw))
    if any(link not in raw_links for link in _HREF_RE.findall(rendered)):
        return True
    return len(visible_text(rendered)) > len(visible_text(raw)) + 40
