"""Every real saved page of tests/fixtures/realpages, end to end through a local server and a cycle.

The pages are third-party captures of government sites (see tests/fixtures/realpages/README.md),
with ground truth in truth.json. For every article page: the title is right, every body probe is in
the stored text and no chrome string is; ordinary page noise (scripts, counters, reordered link
lists, an ad block, re-wrapped lines, punctuation width, another encoding) gives no event and no
version; the truth's edit gives exactly one `changed` event whose diff shows the old and new text.
Anti-bot pages are fetch errors, never versions; listing pages list their items.

Comparisons are on NFKC text with all whitespace removed, as truth.json says. One deliberate
leniency: a title may carry its 发文字号 in trailing brackets or not (the truth strips it on one
page and keeps it on another although both pages print it the same way).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crawlers.listings import parse_html_listing
from policywatch.classify import diff_versions
from policywatch.config import parse_config
from policywatch.pipeline import CycleSummary, run_cycle
from storage.db import make_engine, session_factory
from storage.models import ChangeEvent, Document, DocumentVersion
from tests.support.site import LocalSite

REALPAGES = Path(__file__).parent / "fixtures" / "realpages"
TRUTH = {r["key"]: r for r in json.loads((REALPAGES / "truth.json").read_text(encoding="utf-8"))}
ARTICLES = sorted(k for k, r in TRUTH.items() if r["page_type"].startswith(("article", "attachment")))
LISTINGS = sorted(k for k, r in TRUTH.items() if r["page_type"].startswith("listing"))
CHALLENGES = sorted(k for k, r in TRUTH.items() if r["page_type"].startswith("anti-bot"))


def page(key: str) -> str:
    return (REALPAGES / "pages" / f"{key}.html").read_text(encoding="utf-8")


def squash(text: str | None) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or ""))


def title_matches(found: str | None, truth: dict) -> bool:
    want, got = squash(truth["title"]), squash(found)
    if got == want:
        return True
    number = squash(truth.get("doc_number"))
    if number:
        bare = re.compile(r"[(\[【〔]?" + re.escape(number) + r"[)\]】〕]?$")
        return bare.sub("", got) == bare.sub("", want)
    return False


# --- noise: what a refetch of an unchanged page may look like ---------------------------------------

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
_TEXT = re.compile(r">([^<]+)<")
_FLAT_LIST = re.compile(r"(<(ul|ol)\b[^>]*>)((?:(?!<(?:ul|ol)\b).)*?)(</\2\s*>)", re.I | re.S)
_ITEM = re.compile(r"<li\b.*?(?=<li\b|$)", re.I | re.S)


def _after_body_open(html: str, snippet: str) -> str:
    m = _BODY_OPEN.search(html)
    at = m.end() if m else 0
    return html[:at] + snippet + html[at:]


def _in_text(html: str, change: Callable[[str], str]) -> str:
    """Apply `change` to text between tags only (never inside a tag or an attribute)."""
    return _TEXT.sub(lambda m: ">" + change(m.group(1)) + "<", html)


def scripts(html: str) -> str:
    return _after_body_open(html, '<script>var _trs_uv="uv-7f3a9";var _ts=1733201234;</script>').replace(
        "</head>", "<script>window.__nonce='c2f9e1';</script></head>", 1
    )


def counters(html: str) -> str:
    block = '<div class="visit-counter">浏览次数：48213</div><span class="hits">访问量：1932</span>'
    return _after_body_open(html, block)


def reordered_lists(html: str) -> str:
    """Link lists (every item a link: related articles, rankings, navigation) in reverse order."""

    def reverse(m: re.Match[str]) -> str:
        items = _ITEM.findall(m.group(3))
        if len(items) < 2 or not all("<a " in item.lower() for item in items):
            return m.group()
        head = m.group(3)[: m.group(3).lower().find("<li")]
        return m.group(1) + head + "".join(reversed(items)) + m.group(4)

    return _FLAT_LIST.sub(reverse, html)


def ad_block(html: str) -> str:
    ad = '<div class="ad"><a href="/promo/2024"><img src="/ad.gif" alt="">招商广告位 限时优惠</a></div>'
    return _after_body_open(html, ad)


def rewrapped(html: str) -> str:
    return _in_text(html, lambda t: t.replace("，", "，\n      ").replace("。", "。\r\n  "))


def half_width(html: str) -> str:
    table = str.maketrans({"，": ",", "：": ":", "；": ";", "（": "(", "）": ")", "！": "!", "？": "?"})
    return _in_text(html, lambda t: t.translate(table))


NOISE: dict[str, Callable[[str], str]] = {
    "scripts": scripts,
    "counters": counters,
    "reordered lists": reordered_lists,
    "ad block": ad_block,
    "re-wrapped lines": rewrapped,
    "punctuation width": half_width,
}


# --- the world -----------------------------------------------------------------------------------------


class RealSite:
    def __init__(self, site: LocalSite, db_url: str, keys: list[str]) -> None:
        self.site, self.keys = site, keys
        self.engine = make_engine(db_url)
        self.sessions = session_factory(self.engine)
        pages = "".join(f'\n      - "{site.url(self.path(k))}"' for k in keys)
        self.config = parse_config(
            f"""
sources:
  - id: realpages
    name: 真实页面
    listing_urls: []
    pages:{pages}
    min_delay_s: 0
settings:
  backoff_base_s: 0.01
  max_attempts: 1
  read_timeout_s: 10
"""
        )

    @staticmethod
    def path(key: str) -> str:
        return f"/realpages/{key}.html"

    def serve(
        self, transform: Callable[[str, str], str] = lambda key, html: html, charset: str = "utf-8"
    ) -> None:
        for key in self.keys:
            html = transform(key, page(key))
            if charset != "utf-8":
                html = re.sub(r"charset\s*=\s*[\"']?utf-8", f"charset={charset}", html, flags=re.I)
            self.site.put(
                self.path(key),
                html.encode(charset),
                headers={"Content-Type": f"text/html; charset={charset}"},
            )

    def cycle(self) -> CycleSummary:
        return run_cycle(self.config, self.engine)

    def current(self) -> dict[str, DocumentVersion]:
        with self.sessions() as s:
            out = {}
            for doc in s.scalars(select(Document)):
                key = doc.url.rsplit("/", 1)[-1].removesuffix(".html")
                out[key] = s.get(DocumentVersion, doc.current_version_id)
            return out

    def events(self) -> list[ChangeEvent]:
        with self.sessions() as s:
            return list(s.scalars(select(ChangeEvent).order_by(ChangeEvent.id)))

    def versions(self) -> int:
        with self.sessions() as s:
            return len(s.scalars(select(DocumentVersion.id)).all())


@pytest.fixture
def real(site: LocalSite, db_url: str) -> Iterator[RealSite]:
    world = RealSite(site, db_url, ARTICLES)
    yield world
    world.engine.dispose()


def test_real_pages_end_to_end(real: RealSite) -> None:
    real.serve()
    first = real.cycle()
    assert first.failures == [] and first.baseline == len(ARTICLES), first.failures

    current = real.current()
    problems = []
    for key in ARTICLES:
        truth, version = TRUTH[key], current[key]
        text = squash(version.text)
        if not title_matches(version.title, truth):
            problems.append(f"{key}: title {version.title!r}")
        problems += [
            f"{key}: probe missing {p!r}" for p in truth.get("probes") or [] if squash(p) not in text
        ]
        problems += [f"{key}: chrome kept {c!r}" for c in truth.get("chrome") or [] if squash(c) in text]
        if squash(version.doc_number) != squash(truth.get("doc_number")):
            problems.append(f"{key}: 发文字号 {version.doc_number!r}, not {truth.get('doc_number')!r}")
        if version.published_at != truth.get("date"):
            problems.append(f"{key}: date {version.published_at!r}, not {truth.get('date')!r}")
    assert problems == []

    versions = real.versions()
    for name, noise in NOISE.items():
        real.serve(lambda key, html, noise=noise: noise(html))
        summary = real.cycle()
        assert (summary.changed, summary.new, summary.errors) == (0, 0, 0), (name, summary.failures)
        assert real.events() == [], name
        assert real.versions() == versions, name
    real.serve(lambda key, html: rewrapped(counters(html)), charset="gb18030")
    summary = real.cycle()
    assert (summary.changed, summary.errors, real.versions()) == (0, 0, versions), summary.failures

    edited = [k for k in ARTICLES if TRUTH[k].get("edit")]
    real.serve(lambda key, html: apply_edit(html, TRUTH[key].get("edit")))
    summary = real.cycle()
    assert summary.errors == 0, summary.failures
    events = real.events()
    by_key = {}
    for event in events:
        assert event.kind == "changed", event.kind
        with real.sessions() as s:
            key = s.get(Document, event.document_id).url.rsplit("/", 1)[-1].removesuffix(".html")
            assert key not in by_key, f"{key}: two events for one edit"
            by_key[key] = diff_versions(
                s.get(DocumentVersion, event.old_version_id), s.get(DocumentVersion, event.new_version_id)
            )
    assert sorted(by_key) == edited
    for key, diff in by_key.items():
        edit = TRUTH[key]["edit"]
        olds = squash("".join(c.old or "" for c in diff.changes))
        news = squash("".join(c.new or "" for c in diff.changes))
        assert squash(edit["old"]) in olds and squash(edit["new"]) in news, (key, diff.changes)


def apply_edit(html: str, edit: dict | None) -> str:
    if not edit:
        return html
    assert edit["old"] in html
    return html.replace(edit["old"], edit["new"])


def test_noise_profiles_really_change_the_pages() -> None:
    """Each noise profile changes the bytes of a good share of the pages (or the test above proves little)."""
    for name, noise in NOISE.items():
        changed = sum(noise(page(k)) != page(k) for k in ARTICLES)
        assert changed >= len(ARTICLES) // 3, name


@pytest.mark.parametrize("key", CHALLENGES)
def test_challenge_pages_are_fetch_errors(site: LocalSite, sqlite_url: str, key: str) -> None:
    world = RealSite(site, sqlite_url, [key])
    status = 412 if "412" in TRUTH[key]["page_type"] or "rs412" in key else 200
    site.put(world.path(key), page(key).encode(), status=status)
    summary = world.cycle()
    assert summary.errors == 1 and summary.baseline == 0, summary.failures
    assert world.versions() == 0
    world.engine.dispose()


@pytest.mark.parametrize("key", LISTINGS)
def test_listing_pages_list_their_items(key: str) -> None:
    truth = TRUTH[key]
    links = parse_html_listing(page(key), "https://example.gov.cn/list/index.html", re.compile("."))
    titles = squash(" ".join(link.title or "" for link in links))
    missing = [p for p in truth["probes"] if squash(p).removesuffix("...") not in titles]
    assert missing == []


@pytest.mark.parametrize("key", LISTINGS)
@pytest.mark.parametrize("corruption", ["</html>", "</body></html><html><body>"])
def test_a_malformed_root_hides_no_listed_item(key: str, corruption: str) -> None:
    """A stray root end tag after the header include (as on www.gov.cn) once emptied a listing."""
    html = page(key)
    at = html.lower().find("<body")
    at = html.find(">", at) + 1
    broken = html[:at] + "<div class='header'>网站头部</div>" + corruption + html[at:]
    base = "https://example.gov.cn/list/index.html"
    want = {link.url for link in parse_html_listing(html, base, re.compile("."))}
    got = {link.url for link in parse_html_listing(broken, base, re.compile("."))}
    assert len(want) >= 10 and got == want
