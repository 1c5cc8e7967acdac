"""URL canonicalisation and link discovery on listing pages."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urljoin, urlsplit, urlunsplit

import idna
from lxml import etree
from requests.utils import requote_uri

from policywatch.extraction.markup import repair_markup

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Conservative: only parameters that are certainly tracking noise, never ones a CMS may route on.
_TRACKING_EXACT = frozenset({"spm", "fbclid", "gclid"})
_TRACKING_PREFIX = ("utm_",)
_HREF_NOISE = re.compile(r"[\t\n\r]")
# An ASCII host name: letters, digits, hyphens, dots (and underscores, which DNS allows and some
# sites use). Anything else (spaces, %, controls, quotes) is no host a request can be sent to.
_ASCII_HOST = re.compile(r"[a-z0-9_.-]+")


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


def canonical_host(host: str) -> str:
    """The host as a request sends it: lowercase ASCII, an internationalised name in IDNA
    (punycode: 政府.中国 -> xn--mxtq1m.xn--fiqs8s), an IPv6 literal in brackets. Raises ValueError
    for a host no request can be sent to (characters a name cannot hold, an invalid label)."""
    host = host.strip("[]") if host.startswith("[") else host
    if ":" in host:  # IPv6 literal (with an optional %zone)
        address, _, zone = host.partition("%")
        ipaddress.IPv6Address(address)  # ValueError if it is none
        if zone and not _ASCII_HOST.fullmatch(zone.lower()):
            raise ValueError(f"invalid IPv6 zone: {zone!r}")
        return f"[{host.lower()}]"
    if host.isascii():
        host = host.lower()
        if not _ASCII_HOST.fullmatch(host):
            raise ValueError(f"invalid host: {host!r}")
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"invalid host: {host!r} ({exc})") from None


def canonical_url(url: str) -> str:
    """Normalise `url` so one document has one spelling.

    Lowercases scheme and host (an internationalised host becomes its IDNA/punycode name), drops
    user:password@ (credentials are never part of a document's URL: see Fetcher.fetch_page), the
    default port, the fragment and tracking parameters (utm_*, spm, fbclid, gclid), keeps the rest
    of the query in its order, resolves "." and ".." segments, and percent-encodes characters that
    are not allowed in a URL. Raises ValueError for a malformed URL (bad port, broken IPv6
    literal, a host no request can be sent to).
    """
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not parts.netloc:
        # mailto:, javascript:, relative references: nothing to normalise but the scheme.
        rest = url[len(parts.scheme) + 1 :] if parts.scheme else url
        return f"{scheme}:{rest}" if scheme else url
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        raw_host = hostport[: hostport.find("]") + 1] if "]" in hostport else hostport
    else:
        raw_host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    host = canonical_host(raw_host) if raw_host else ""
    port = parts.port  # ValueError for a port out of range or not a number
    netloc = host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    path = _remove_dot_segments(parts.path) or "/"
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    return requote_uri(urlunsplit((scheme, netloc, path, query, "")))


def parse_html(html: str) -> etree._Element | None:
    """The page's element tree (libxml2's HTML parser, as BeautifulSoup(html, "lxml") uses it)."""
    return _parse_html(html)[0]


def resource_limit(error_log: etree._ListErrorLog) -> str | None:
    """The message of a libxml2 resource-limit error (nesting deeper than its limit, a text node
    too long...) in `error_log`, else None. Past such a limit libxml2 stops reading the document,
    and in recover mode it hands back what it read so far as if that were all."""
    for error in error_log:
        if error.type_name == "ERR_RESOURCE_LIMIT" or "XML_PARSE_HUGE" in (error.message or ""):
            return (error.message or error.type_name).strip()
    return None


def _parse_html(html: str) -> tuple[etree._Element | None, str | None]:
    """(tree, None), or (what was read, the resource limit that stopped the parser early).

    huge_tree: nesting up to 2,048 deep (not 256) is read; old CMS pages with unclosed <font> and
    <div> tags nest deeper than 256.
    """
    # A stray </html> (real templates have one after a header include) would make libxml2 drop
    # every link after it: read the page as a browser does (extraction.markup, a leaf module).
    html = repair_markup(html)
    parser = etree.HTMLParser(huge_tree=True)  # one per call: an lxml parser must not be shared
    try:
        root = etree.fromstring(html, parser)
    except ValueError:  # a str that declares its own encoding (<?xml encoding=...?>): parse its bytes
        parser = etree.HTMLParser(encoding="utf-8", huge_tree=True)
        try:
            root = etree.fromstring(html.encode("utf-8"), parser)
        except etree.ParserError:
            return None, None
    except etree.ParserError:
        return None, None
    return root, resource_limit(parser.error_log)


def absolute_link(href: str, base_url: str) -> str | None:
    """The canonical http(s) URL an <a href> points to, else None (javascript:, mailto:, #anchor,
    a host no request can be sent to...). Credentials in the link (user:password@) are dropped."""
    # as browsers do: strip surrounding whitespace, drop tabs and newlines inside
    href = _HREF_NOISE.sub("", href.strip())
    if not href or href.startswith("#"):
        return None
    try:
        absolute = urljoin(base_url, href)
        if urlsplit(absolute).scheme.lower() not in ("http", "https"):
            return None
        return canonical_url(absolute)
    except ValueError:  # e.g. a malformed IPv6 literal
        return None


def find_links(html: str, base_url: str, link_pattern: str | re.Pattern[str]) -> dict[str, str]:
    """The page's <a href> links matching `link_pattern`: canonical URL -> link text, in document order.

    Honours <base href>, ignores javascript:/mailto:/tel: and same-page anchors. The pattern is
    applied with re.search to the canonical URL. The text is the link's title attribute, else its
    text, whitespace-folded (the longest one when a URL is linked more than once, e.g. a thumbnail
    and a headline; "" when it has none). One parse with lxml: a listing of 1,000 links took
    BeautifulSoup 0.4 s. A page nested deeper than the parser reads gives the links before that
    point (see `find_links_checked`).
    """
    return find_links_checked(html, base_url, link_pattern)[0]


def find_links_checked(
    html: str, base_url: str, link_pattern: str | re.Pattern[str]
) -> tuple[dict[str, str], str | None]:
    """`find_links`, and why the parser stopped before the end of the page (None: it did not)."""
    pattern = re.compile(link_pattern) if isinstance(link_pattern, str) else link_pattern
    root, problem = _parse_html(html)
    if root is None:
        return {}, problem
    base = base_url
    for base_tag in root.iterfind(".//base[@href]"):
        href = (base_tag.get("href") or "").strip()
        if href:
            base = urljoin(base_url, href)
        break
    links: dict[str, str] = {}
    rejected: set[str] = set()
    for a in root.iterfind(".//a[@href]"):
        url = absolute_link(a.get("href") or "", base)
        if url is None or url in rejected:
            continue
        if url not in links and not pattern.search(url):
            rejected.add(url)
            continue
        title = " ".join((a.get("title") or "").split()) or " ".join(" ".join(a.itertext()).split())
        if url not in links or len(title) > len(links[url]):
            links[url] = title
    return links, problem


def discover_links(html: str, base_url: str, link_pattern: str | re.Pattern[str]) -> list[str]:
    """Absolute canonical http(s) URLs of the page's <a href> links matching `link_pattern`, each
    once, in document order (see `find_links`)."""
    return list(find_links(html, base_url, link_pattern))
