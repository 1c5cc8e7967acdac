"""The fast path survives ordinary page noise and never survives an edit: real pages, evidence plan.

For every real saved article page (tests/fixtures/realpages) and every noise profile the benchmark
uses (benchmarks/pages.py: reordered sidebars, visit counters, rotating ads, nonces in forms and
scripts, footer timestamps, shuffled attribute order), a refetch that differs only by that noise is
taken as the same page without extraction; the truth's edit, under the same noise, never is.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from benchmarks.pages import NOISE_PROFILES, apply_noise
from policywatch.extraction import extract_document
from policywatch.extraction.equivalence import (
    _CHROME_TAGS,
    _GENERIC_CONTAINERS,
    _GENERIC_MIN_CHARS,
    _HIDDEN_STYLE,
    _META_TABLE_CORE,
    _RELATED_HEADING,
    _TITLE_TOKENS,
    fingerprint_like,
    learned_fingerprint,
    page_fingerprint,
)

REALPAGES = Path(__file__).parent / "fixtures" / "realpages"
TRUTH = {r["key"]: r for r in json.loads((REALPAGES / "truth.json").read_text(encoding="utf-8"))}
PAGES = {key: (REALPAGES / "pages" / f"{key}.html").read_text(encoding="utf-8") for key in TRUTH}
ARTICLES = sorted(k for k, r in TRUTH.items() if r["page_type"].startswith("article"))
URL = "https://example.gov.cn/a.html"


def _stored(html: str) -> str | None:
    return learned_fingerprint(html, extract_document(html, URL))


def _skipped(html: str, stored: str | None) -> bool:
    return stored is not None and fingerprint_like(html, stored, page_fingerprint(html)) == stored


def _text(html: str) -> tuple[str, tuple[str, ...]]:
    doc = extract_document(html, URL)
    return doc.title, tuple(doc.normalised_paragraphs)


@pytest.mark.parametrize("profile", sorted(NOISE_PROFILES))
@pytest.mark.parametrize("key", ARTICLES)
def test_noise_keeps_a_real_page_on_the_fast_path(key: str, profile: str) -> None:
    page = PAGES[key]
    stored = _stored(apply_noise(page, profile, random.Random(1)))
    for seed in (2, 3):
        noisy = apply_noise(page, profile, random.Random(seed))
        if stored is not None and stored.startswith("c"):
            # Read from a CMS container: the noise is noise for extraction (same title and text),
            # and the page stays on the fast path.
            assert _text(noisy) == _text(page)
            assert _skipped(noisy, stored), f"{key}: {profile} left the fast path"
        elif _skipped(noisy, stored):
            # trafilatura reads the whole page (and may pick noise up): the whole page is evidence.
            assert _text(noisy) == _text(apply_noise(page, profile, random.Random(1)))


@pytest.mark.parametrize("profile", sorted(NOISE_PROFILES))
@pytest.mark.parametrize("key", sorted(k for k in ARTICLES if TRUTH[k].get("edit")))
def test_an_edit_under_noise_is_always_read(key: str, profile: str) -> None:
    edit = TRUTH[key]["edit"]
    page = apply_noise(PAGES[key], profile, random.Random(1))
    edited = apply_noise(PAGES[key].replace(edit["old"], edit["new"]), profile, random.Random(2))
    assert _text(edited) != _text(page)
    assert not _skipped(edited, _stored(page)), f"{key}: edit hidden under {profile}"


def test_a_title_change_outside_the_container_is_read() -> None:
    """The title lives outside the body container: its heading and <title> are evidence too."""
    key = next(k for k in ARTICLES if _stored(PAGES[k]).startswith("c"))
    page = PAGES[key]
    title = extract_document(page, URL).title
    stored = _stored(page)
    retitled = page.replace(title, title[:-1] + "（修订）")
    assert retitled != page and _text(retitled) != _text(page)
    assert not _skipped(retitled, stored)


def test_the_replica_constants_are_extractions() -> None:
    """equivalence keeps copies of extraction.document's rules (to stay free of BeautifulSoup)."""
    from policywatch.extraction import document

    assert _META_TABLE_CORE == document._META_TABLE_CORE
    assert _RELATED_HEADING.pattern == document._RELATED_HEADING.pattern
    assert _TITLE_TOKENS.pattern == document._TITLE_TOKENS.pattern
    assert _HIDDEN_STYLE.pattern == document._HIDDEN_STYLE.pattern
    assert _GENERIC_CONTAINERS == document._GENERIC_CONTAINERS
    assert _GENERIC_MIN_CHARS == document._GENERIC_MIN_CHARS
    assert _CHROME_TAGS == document._CHROME_TAGS


def test_ruby_annotations_leave_the_page_to_the_whole_page_plan() -> None:
    """BeautifulSoup's get_text() skips <rt>: the evidence reading cannot measure text as it does."""
    key = next(k for k in ARTICLES if _stored(PAGES[k]).startswith("c"))
    page = PAGES[key].replace("</title>", "</title>", 1)
    with_ruby = re.sub(r"(<body\b[^>]*>)", r"\1<p><ruby>汉<rt>hàn</rt></ruby></p>", page, count=1)
    stored = _stored(with_ruby)
    assert stored is not None and stored.startswith("w:")
    assert _skipped(with_ruby, stored)


def test_an_element_extraction_removes_never_hashes_like_an_empty_one() -> None:
    """A decomposed <p class="share"> leaves the text around it one paragraph; an empty <p> that is
    really there splits it: the two must never share a fingerprint."""

    def page(cell: str) -> str:
        return (
            "<html><head><title>关于推进数据要素市场化配置的通知</title></head><body>"
            "<h1>关于推进数据要素市场化配置的通知</h1><div id='UCAP-CONTENT'><table><tr><td>"
            f"各地区要加快数据要素市场建设。{cell}各部门要加强统筹协调，抓好贯彻落实。"
            "</td></tr></table><p>第二段：现将有关事项通知如下，请认真执行。</p></div></body></html>"
        )

    removed, empty = page('<p class="share">分享</p>'), page("<p></p>")
    assert _text(removed) != _text(empty)
    assert not _skipped(empty, _stored(removed))
    assert not _skipped(removed, _stored(empty))
