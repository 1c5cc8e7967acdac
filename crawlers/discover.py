"""URL canonicalisation and link discovery on listing pages."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup
from requests.utils import requote_uri

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Conservative: only parameters that are certainly tracking noise, never ones a CMS may route on.
_TRACKING_EXACT = frozenset({"spm", "fbclid", "gclid"})
_TRACKING_PREFIX = ("utm_",)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    if "." not in path:
        return path
    inp, out = path, ""
    while inp:
        if inp.startswith("../"):
            inp = inp[3:]
        elif inp.startswith("./") or inp.startswith("/./"):
            inp = inp[2:]
        elif inp == "/.":
            inp = "/"
        elif inp.startswith("/../") or inp == "/..":
            inp = "/" + inp[4:] if inp.startswith("/../") else "/"
            out = out[: out.rfind("/")] if "/" in out else ""
        elif inp in (".", ".."):
            inp = ""
        else:
            cut = inp.find("/", 1)
            seg, inp = (inp, "") if cut == -1 else (inp[:cut], inp[cut:])
            out += seg
    return out


def _is_tracking(param: str) -> bool:
    key = param.split("=", 1)[0].strip().lower()
    return key in _TRACKING_EXACT or key.startswith(_TRACKING_PREFIX)


def canonical_url(url: str) -> str:
    """Normalise `url` so one document has one spelling.

    Lowercases scheme and host, drops the default port, the fragment and tracking parameters
    (utm_*, spm, fbclid, gclid), keeps the rest of the query in its order, resolves "." and ".."
    segments, and percent-encodes characters that are not allowed in a URL. Raises ValueError for
    a malformed URL (bad port, broken IPv6 literal).
    """
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not parts.netloc:
        # mailto:, javascript:, relative references: nothing to normalise but the scheme.
        rest = url[len(parts.scheme) + 1 :] if parts.scheme else url
        return f"{scheme}:{rest}" if scheme else url
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port  # ValueError for a port out of range or not a number
    netloc = host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    path = _remove_dot_segments(parts.path) or "/"
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    return requote_uri(urlunsplit((scheme, netloc, path, query, "")))


def discover_links(html: str, base_url: str, link_pattern: str | re.Pattern[str]) -> list[str]:
    """Absolute canonical http(s) URLs of the page's <a href> links matching `link_pattern`.

    Honours <base href>, ignores javascript:/mailto:/tel: and same-page anchors, and returns each
    URL once, in document order. The pattern is applied with re.search to the canonical URL.
    """
    pattern = re.compile(link_pattern) if isinstance(link_pattern, str) else link_pattern
    soup = BeautifulSoup(html, "lxml")
    base = base_url
    base_tag = soup.find("base", href=True)
    if base_tag is not None:
        href = str(base_tag.get("href", "")).strip()
        if href:
            base = urljoin(base_url, href)
    seen: set[str] = set()
    links: list[str] = []
    for a in soup.find_all("a", href=True):
        # as browsers do: strip surrounding whitespace, drop tabs and newlines inside
        href = re.sub(r"[\t\n\r]", "", str(a.get("href", "")).strip())
        if not href or href.startswith("#"):
            continue
        try:
            absolute = urljoin(base, href)
            if urlsplit(absolute).scheme.lower() not in ("http", "https"):
                continue
            url = canonical_url(absolute)
        except ValueError:  # e.g. a malformed IPv6 literal
            continue
        if url in seen or not pattern.search(url):
            continue
        seen.add(url)
        links.append(url)
    return links
