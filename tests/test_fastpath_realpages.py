"""The unchanged-page fast path can never hide a change: checked on real saved pages, malformed.

The pipeline reads page `a` in full and keeps `learned_fingerprint(a, extraction)`; a later fetch
`b` whose fingerprint under the same plan is that one is not extracted. That is only sound if the
two pages then extract to the same title and paragraphs. Real CMS templates are
malformed in ways that make parsers disagree (a stray ``</html>`` after a header include on
www.gov.cn hid three different edits of the body), so the property is checked on the real pages of
tests/fixtures/realpages with random corruptions of the kinds seen on the web: stray ``</html>`` /
``</body>`` early, unclosed tags, two ``<html>`` roots, content after ``</html>``, comments around
content, ``<noscript>`` copies. Where a fingerprint cannot be trusted it must be None (extract).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policywatch.extraction import ExtractionError, extract_document
from policywatch.extraction.equivalence import fingerprint_like, learned_fingerprint, page_fingerprint

REALPAGES = Path(__file__).parent / "fixtures" / "realpages"
TRUTH = {r["key"]: r for r in json.loads((REALPAGES / "truth.json").read_text(encoding="utf-8"))}
PAGES = {key: (REALPAGES / "pages" / f"{key}.html").read_text(encoding="utf-8") for key in TRUTH}
ARTICLES = sorted(k for k, r in TRUTH.items() if r["page_type"].startswith("article"))
EDITED = sorted(k for k in ARTICLES if TRUTH[k].get("edit"))

_TAG_START = re.compile(r"<(?=[A-Za-z/!])")
_CLOSING = re.compile(r"</(?:div|p|span|td|tr|li|ul|table|font|strong|a)\s*>", re.I)
_HAN = re.compile(r"[\u4e00-\u9fff]")


def _boundaries(html: str) -> list[int]:
    return [m.start() for m in _TAG_START.finditer(html)]


def _text_positions(html: str) -> list[int]:
    """Offsets of Han characters in text (outside tags; scripts and attributes may be included)."""
    out, inside = [], False
    for i, ch in enumerate(html):
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside and _HAN.match(ch):
            out.append(i)
    return out


CORRUPTIONS = (
    "stray_html_end",
    "stray_body_end",
    "unclosed",
    "second_root",
    "after_html",
    "commented",
    "noscript_copy",
)


def corrupt(html: str, kind: str, pick: int, pick2: int) -> str:
    """`html` with one corruption of `kind`; `pick`/`pick2` choose where (taken modulo the choices)."""
    cuts = _boundaries(html)
    at = cuts[pick % len(cuts)]
    if kind == "stray_html_end":
        return html[:at] + "</html>" + html[at:]
    if kind == "stray_body_end":
        return html[:at] + "</body>" + html[at:]
    if kind == "unclosed":
        closers = list(_CLOSING.finditer(html))
        if not closers:
            return html
        m = closers[pick % len(closers)]
        return html[: m.start()] + html[m.end() :]
    if kind == "second_root":
        return html[:at] + '</body></html><html><head><title>x</title></head><body class="b2">' + html[at:]
    if kind == "after_html":
        return html + "\n<div class='tail'><p>页面尾部统计代码之后的内容</p></div>"
    end = cuts[pick2 % len(cuts)]
    start, end = sorted((at, end))
    if kind == "commented":
        chunk = html[start:end].replace("-->", "")
        return html[:start] + "<!--" + chunk + "-->" + html[end:]
    if kind == "noscript_copy":
        return html[:start] + "<noscript>" + html[start:end] + "</noscript>" + html[start:]
    raise AssertionError(kind)


URL = "https://example.gov.cn/a.html"


def _stored(html: str) -> str | None:
    """The fingerprint the pipeline keeps after reading `html` in full (None: no version, none kept)."""
    try:
        doc = extract_document(html, URL)
    except ExtractionError:
        return None
    return learned_fingerprint(html, doc)


def _skipped(html: str, stored: str | None) -> bool:
    """The observe stage takes `html` for the page `stored` was learned from, without extracting it."""
    return stored is not None and fingerprint_like(html, stored, page_fingerprint(html)) == stored


def _extracted(html: str) -> tuple[str, tuple[str, ...]] | None:
    try:
        doc = extract_document(html, URL)
    except ExtractionError:
        return None
    return doc.title, tuple(doc.normalised_paragraphs)


@st.composite
def page_pair(draw: st.DrawFn) -> tuple[str, str, str]:
    """(key, a, b): a real page under some corruptions, and the same page, maybe corrupted
    otherwise, with one Han character of its text replaced."""
    key = draw(st.sampled_from(ARTICLES))
    base = PAGES[key]
    kinds = draw(st.lists(st.sampled_from(CORRUPTIONS), min_size=0, max_size=3))
    picks = [(draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))) for _ in kinds]
    a = base
    for kind, (p1, p2) in zip(kinds, picks, strict=True):
        a = corrupt(a, kind, p1, p2)
    b = a
    if draw(st.booleans()):  # the next fetch is malformed differently
        b = corrupt(base, draw(st.sampled_from(CORRUPTIONS)), draw(st.integers(0, 10**6)), 0)
    positions = _text_positions(b)
    at = positions[draw(st.integers(0, len(positions) - 1))]
    replacement = draw(st.sampled_from("零壹贰叁肆伍陆柒捌玖"))
    if b[at] == replacement:
        replacement = "拾"
    return key, a, b[:at] + replacement + b[at + 1 :]


@given(page_pair())
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_same_fingerprint_means_same_extraction(pair: tuple[str, str, str]) -> None:
    key, a, b = pair
    if not _skipped(b, _stored(a)):
        return  # the pipeline extracts b: nothing to prove
    assert _extracted(a) == _extracted(b), f"{key}: same fingerprint, different extraction"


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("key", EDITED)
def test_the_real_edit_is_never_hidden(key: str, kind: str) -> None:
    """truth.json's edit, under each corruption at several places: the fingerprint changes (or is
    None) unless the corruption hid the edited text from extraction too (commented out, say)."""
    edit = TRUTH[key]["edit"]
    for pick in (1, 7, 31, 97, 331):
        page = corrupt(PAGES[key], kind, pick, pick * 13)
        edited = page.replace(edit["old"], edit["new"])
        if _skipped(edited, _stored(page)):
            assert _extracted(page) == _extracted(edited), f"{key} under {kind}@{pick}: edit hidden"


@pytest.mark.parametrize("key", ARTICLES)
def test_real_pages_have_a_fingerprint(key: str) -> None:
    """The fast path is not bought by refusing it: every real article page gets a fingerprint, and
    one read from a CMS container keeps the evidence plan (not the whole page)."""
    stored = _stored(PAGES[key])
    assert stored is not None
    doc = extract_document(PAGES[key], URL)
    assert stored.startswith("c") == (doc.method == "cms"), (stored, doc.reasons)
    assert _skipped(PAGES[key], stored)
