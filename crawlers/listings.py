"""Listings beyond a plain HTML page of links: JSON documents of items, RSS/Atom feeds, and titles.

Every parser returns `ListedLink`s (canonical URL, the title the listing shows, its date), in the
listing's order, each URL once. `fetch_listing` fetches a listing through `Fetcher.fetch_page`
(with `feed=True` for JSON and XML), so the same politeness, robots, redirect, size and
private-address rules apply.
"""

from __future__ import annotations

import functools
import html as html_lib
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .discover import absolute_link, find_links_checked, resource_limit
from .fetch import Fetcher, FetchResult
from .reasons import safe_reason

__all__ = [
    "ListedLink",
    "ListingError",
    "fetch_listing",
    "hanweb_page_count",
    "hanweb_page_urls",
    "json_value",
    "parse_feed",
    "parse_hanweb_listing",
    "parse_html_listing",
    "parse_json_listing",
]


log = logging.getLogger(__name__)

_T = TypeVar("_T")


class ListingError(ValueError):
    """A listing that cannot be read as what it was configured to be (the message says why)."""

    def __init__(self, message: str) -> None:
        super().__init__(safe_reason(message))


def _stopped_early(what: str, problem: str) -> str:
    why = "nested too deeply" if "depth" in problem.lower() else "too large"
    return f"{what} {why} to read to the end (the parser stopped: {problem})"


def _listing_errors(parse: Callable[..., _T]) -> Callable[..., _T]:
    """Whatever reading a listing raises (a parser's RecursionError, a bug) is that listing's
    ListingError: a listing never stops the cycle."""

    @functools.wraps(parse)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return parse(*args, **kwargs)
        except ListingError:
            raise
        except RecursionError as exc:
            raise ListingError("nested too deeply to read") from exc
        except Exception as exc:
            log.exception("reading a listing failed")
            raise ListingError(f"could not read the listing: {type(exc).__name__}: {exc}") from exc

    return wrapper


@dataclass(frozen=True)
class ListedLink:
    url: str
    title: str | None = None
    date: str | None = None


_TAG_RE = re.compile(r"<[^>]*>")


def _fold(text: str | None) -> str | None:
    folded = " ".join((text or "").split())
    return folded or None


def _dedupe(links: Iterable[ListedLink], pattern: re.Pattern[str] | None) -> list[ListedLink]:
    seen: set[str] = set()
    out: list[ListedLink] = []
    for link in links:
        if link.url in seen or (pattern is not None and not pattern.search(link.url)):
            continue
        seen.add(link.url)
        out.append(link)
    return out


# --- HTML ---------------------------------------------------------------------------------------


@_listing_errors
def parse_html_listing(html: str, base_url: str, pattern: re.Pattern[str]) -> list[ListedLink]:
    """The document links of an HTML listing (as `discover_links` finds them), with their titles.

    The title is the link's title attribute, else its text (the longest one when a URL is linked
    more than once, e.g. a thumbnail and a headline). A page the parser stops reading early
    (nested too deeply) is a ListingError: the links after that point would be lost unnoticed.
    """
    links, problem = find_links_checked(html, base_url, pattern)
    if problem is not None:
        raise ListingError(_stopped_early("HTML", problem))
    return [ListedLink(url, title or None) for url, title in links.items()]


# --- JSON ---------------------------------------------------------------------------------------

_MISSING = object()


def json_value(data: Any, path: str) -> Any:
    """The value at dotted `path` ("data.list", "searchVO.catMap.gongwen.listVO", "items.0.url").

    "" is `data` itself. Returns None when a step is missing.
    """
    if not path:
        return data
    current = data
    for step in path.split("."):
        if isinstance(current, dict):
            current = current.get(step, _MISSING)
        elif isinstance(current, list) and step.lstrip("-").isdigit():
            index = int(step)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        else:
            current = _MISSING
        if current is _MISSING:
            return None
    return current


def _first_text(item: Any, paths: Sequence[str]) -> str | None:
    for path in paths:
        value = json_value(item, path)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = _fold(str(value))
            if text:
                return text
    return None


def _strip_tags(text: str | None) -> str | None:
    """Search APIs wrap matches in <em>…</em>; titles are plain text."""
    if not text or "<" not in text:
        return text
    from bs4 import BeautifulSoup  # only for listings that carry HTML in a JSON field

    return _fold(BeautifulSoup(text, "lxml").get_text())


def load_json(text: str) -> Any:
    """Parse a JSON listing; a JSONP wrapper (`callback({...});`) is accepted too.

    ListingError when it is not JSON, or nested deeper than Python's parser goes (RecursionError).
    """
    body = text.lstrip("\ufeff").strip()
    try:
        try:
            return json.loads(body)
        except ValueError:
            m = re.match(r"^[\w$.]+\s*\((.*)\)\s*;?\s*$", body, re.S)
            if m:
                try:
                    return json.loads(m.group(1))
                except ValueError:
                    pass
    except RecursionError:
        raise ListingError("JSON nested too deeply to read") from None
    raise ListingError("not valid JSON")


@_listing_errors
def parse_json_listing(
    text: str,
    base_url: str,
    *,
    items: str = "",
    url_field: Sequence[str] = ("url",),
    title_field: Sequence[str] = ("title",),
    date_field: Sequence[str] = (),
    html_field: str | None = None,
    pattern: re.Pattern[str] | None = None,
) -> list[ListedLink]:
    """The documents of a JSON listing: the items at `items`, each item's URL/title/date fields.

    With `html_field` the listing is a JSON envelope around an HTML fragment (a CMS's "unit build"
    API): the fragment's links matching `pattern` are the documents. Relative URLs are resolved
    against `base_url`; `pattern`, when given, filters the URLs.
    """
    data = load_json(text)
    if html_field is not None:
        fragment = json_value(data, html_field)
        if not isinstance(fragment, str):
            raise ListingError(f"no HTML text at {html_field!r}")
        if pattern is None:
            raise ListingError("an HTML fragment needs a link pattern")
        return parse_html_listing(fragment, base_url, pattern)
    rows = json_value(data, items)
    if not isinstance(rows, list):
        where = f"at {items!r}" if items else "at the top level"
        raise ListingError(f"no list of items {where}")
    links = []
    for row in rows:
        raw = _first_text(row, url_field)
        url = absolute_link(raw, base_url) if raw else None
        if url is None:
            continue
        title = _strip_tags(_first_text(row, title_field))
        links.append(ListedLink(url, title, _first_text(row, date_field)))
    return _dedupe(links, pattern)


# --- RSS / Atom ---------------------------------------------------------------------------------

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


@_listing_errors
def parse_feed(text: str, base_url: str, pattern: re.Pattern[str] | None = None) -> list[ListedLink]:
    """The entries of an RSS 2.0, RSS 1.0 (RDF) or Atom feed: link, title, date.

    Sloppy XML (a bare &, an unclosed tag) is read as far as it can be; a feed the parser stops
    reading early (nested deeper than 256, a text node over 10 MB) is a ListingError, never a feed
    that silently lost its later items.
    """
    from lxml import etree

    body = _XML_DECL.sub("", text.lstrip("\ufeff"), count=1).strip()
    if not body.startswith("<"):
        raise ListingError("not an XML feed")
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise ListingError(f"not an XML feed: {exc}") from exc
    problem = resource_limit(parser.error_log)
    if problem is not None:
        raise ListingError(_stopped_early("feed", problem))
    if root is None or _local(root.tag) not in ("rss", "rdf", "feed"):
        raise ListingError("not an RSS or Atom feed")
    links = []
    for element in root.iter():
        name = _local(element.tag)
        if name not in ("item", "entry"):
            continue
        fields: dict[str, str] = {}
        href = None
        for child in element:
            child_name = _local(child.tag)
            if child_name == "link":
                rel = child.get("rel", "alternate")
                candidate = child.get("href") or (child.text or "")
                if candidate.strip() and rel == "alternate" and href is None:
                    href = candidate
            elif child_name in ("title", "pubdate", "published", "updated", "date", "guid"):
                fields.setdefault(child_name, "".join(child.itertext()))
        if href is None and fields.get("guid", "").strip().lower().startswith("http"):
            href = fields["guid"]
        url = absolute_link(href, base_url) if href else None
        if url is None:
            continue
        date = fields.get("pubdate") or fields.get("published") or fields.get("updated") or fields.get("date")
        links.append(ListedLink(url, _fold(fields.get("title")), _fold(date)))
    return _dedupe(links, pattern)


# --- Hanweb 大汉 CMS dataproxy.jsp ----------------------------------------------------------------

# The provincial sites on Hanweb fill their column pages from /module/web/jpage/dataproxy.jsp: an
# XML envelope whose <record> elements each hold one list item as HTML in CDATA, with <totalpage>
# (pages of `perpage` items) and often <totalrecord>. One request returns the records
# startrecord..endrecord (the site's script shows them `perpage` at a time).
_HANWEB_RECORD_RE = re.compile(r"<record\b[^>]*>(.*?)</record\s*>", re.S | re.I)
_HANWEB_CDATA_RE = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_HANWEB_TOTALPAGE_RE = re.compile(r"<totalpage\b[^>]*>\s*(?:<!\[CDATA\[)?\s*(\d+)", re.I)
_HANWEB_TOTALRECORD_RE = re.compile(r"<totalrecord\b[^>]*>\s*(?:<!\[CDATA\[)?\s*(\d+)", re.I)
_DATE_RE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})")
_ANY_LINK = re.compile(".")
HANWEB_PARAMS = ("columnid", "unitid", "webid", "startrecord", "endrecord", "perpage")


@_listing_errors
def parse_hanweb_listing(
    text: str, base_url: str, pattern: re.Pattern[str] | None = None
) -> list[ListedLink]:
    """The documents of a Hanweb 大汉 `dataproxy.jsp` answer: one per <record>, its first link
    (matching `pattern` when given), the link's title (else its text) and the record's date.

    A record's HTML is usually in CDATA; some installations escape it instead (&lt;a href=…),
    which is read too. Not a dataproxy answer at all (no <record> and no <totalpage>, e.g. an
    error page served with 200) is a ListingError; an empty <recordset> is an empty list.
    """
    body = text.lstrip("\ufeff")
    records = _HANWEB_RECORD_RE.findall(body)
    if not records and not _HANWEB_TOTALPAGE_RE.search(body) and "<recordset" not in body.lower():
        raise ListingError("not a Hanweb dataproxy.jsp answer (no <record> or <totalpage>)")
    wanted = pattern or _ANY_LINK
    links: list[ListedLink] = []
    for raw in records:
        cdata = _HANWEB_CDATA_RE.findall(raw)
        fragment = "".join(cdata) if cdata else html_lib.unescape(raw)
        found, problem = find_links_checked(f"<html><body>{fragment}</body></html>", base_url, wanted)
        if problem is not None:
            raise ListingError(_stopped_early("Hanweb record", problem))
        if not found:
            continue
        url, title = next(iter(found.items()))
        m = _DATE_RE.search(_TAG_RE.sub(" ", fragment))
        date = f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else None
        links.append(ListedLink(url, _fold(title), date))
    return _dedupe(links, None)


def _hanweb_window(url: str) -> tuple[int, int, int]:
    """(startrecord, records per request, perpage) of a dataproxy.jsp URL (Hanweb's defaults when
    absent: 1, 3 pages of 15 = 45, 15)."""
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))

    def number(name: str, default: int) -> int:
        value = query.get(name, "")
        return int(value) if value.isdigit() and int(value) > 0 else default

    perpage = number("perpage", 15)
    start = number("startrecord", 1)
    end = number("endrecord", start + perpage * 3 - 1)
    return start, max(1, end - start + 1), perpage


def hanweb_page_urls(url: str, max_pages: int) -> list[str]:
    """`url` (a dataproxy.jsp URL) and the URLs of the next `max_pages - 1` requests: the same
    query with startrecord/endrecord moved on by one request's worth of records each time (the
    other parameters, columnid, unitid, webid, perpage …, kept as they are)."""
    start, batch, _ = _hanweb_window(url)
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    urls = []
    for i in range(max(1, max_pages)):
        first = start + i * batch
        values = {"startrecord": str(first), "endrecord": str(first + batch - 1)}
        query = [(k, values.pop(k, v) if k in ("startrecord", "endrecord") else v) for k, v in pairs]
        query += list(values.items())  # a URL without the window gets one
        urls.append(urlunsplit(parts._replace(query=urlencode(query, safe="/"))))
    return urls


def hanweb_page_count(text: str, url: str) -> int | None:
    """How many requests of `url`'s window size cover the whole list, from the answer's
    <totalrecord> (else <totalpage> × perpage); None when the answer says neither."""
    _, batch, perpage = _hanweb_window(url)
    records = _HANWEB_TOTALRECORD_RE.search(text)
    if records:
        total = int(records.group(1))
    else:
        pages = _HANWEB_TOTALPAGE_RE.search(text)
        if not pages:
            return None
        total = int(pages.group(1)) * perpage
    return max(1, -(-total // batch))


# --- fetching JSON and XML listings ---------------------------------------------------------------


def fetch_listing(
    fetcher: Fetcher,
    url: str,
    *,
    kind: str,
    min_delay_s: float = 1.0,
    allow_private: bool = False,
    encoding: str | None = None,
) -> FetchResult:
    """Fetch a listing page: an HTML page, or a JSON / RSS / Atom / Hanweb dataproxy feed."""
    return fetcher.fetch_page(
        url, min_delay_s=min_delay_s, allow_private=allow_private, encoding=encoding, feed=kind != "html"
    )
