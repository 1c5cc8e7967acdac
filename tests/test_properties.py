"""Property tests (hypothesis) for text normalisation: what must compare equal does.

"The diff of (a, b) rebuilds b from a" lives in tests/test_diff_properties.py; here:
- `normalise_text` is idempotent, on any Unicode text;
- a text and the same text with whitespace added, punctuation width swapped or lines wrapped
  normalise (and hash) the same, as plain text and through a whole page: render, encode (UTF-8 or
  GBK), decode, extract;
- the unchanged-page fast path (extraction.equivalence) only says "same" where extraction agrees.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawlers import decode_html
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page, provincial_page
from policywatch.extraction import content_hash, extract_document, normalise_text
from policywatch.extraction.equivalence import chrome_equivalent

# Characters of the sample corpus: real policy text, all of them encodable in GBK.
HAN = sorted({ch for p in corpus_paragraphs("004") for ch in p if "\u4e00" <= ch <= "\u9fff"})[:400]
LATIN_TOKENS = ["GDP", "5G", "35", "2024", "3.5", "IPv6", "APP", "100"]
# (half-width, full-width) pairs: the same punctuation as pages and editors write it.
WIDTH_PAIRS = [(",", "，"), (":", "："), (";", "；"), ("(", "（"), (")", "）"), ("!", "！"), ("?", "？")]
FULL_PUNCT = [full for _, full in WIDTH_PAIRS] + ["。", "、", "“", "”", "《", "》"]
WHITESPACE = [" ", "  ", "\u3000", "\xa0", "\n", "\r\n", "\t", " \u3000 "]

SETTINGS = settings(max_examples=300, deadline=None)
PAGE_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

han_runs = st.text(alphabet=HAN, min_size=1, max_size=12)


@st.composite
def policy_sentence(draw: st.DrawFn) -> str:
    """Chinese text with figures and Latin tokens in it, punctuated as a policy text is."""
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        parts.append(draw(han_runs))
        if draw(st.booleans()):
            parts.append(draw(st.sampled_from(LATIN_TOKENS)))
            parts.append(draw(han_runs))  # a Latin token always sits between Chinese words
        parts.append(draw(st.sampled_from(FULL_PUNCT)))
    return "".join(parts)


paragraph = st.lists(policy_sentence(), min_size=1, max_size=3).map("".join)
paragraphs = st.lists(paragraph, min_size=1, max_size=6)


def is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


@st.composite
def with_whitespace(draw: st.DrawFn, text: str) -> str:
    """`text` with whitespace runs put next to Chinese characters (where a reader sees none)."""
    out = []
    for i, ch in enumerate(text):
        if i and (is_han(ch) or is_han(text[i - 1])) and draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(WHITESPACE)))
        out.append(ch)
    lead, trail = draw(st.sampled_from(["", " ", "\u3000\u3000"])), draw(st.sampled_from(["", " ", "\n"]))
    return lead + "".join(out) + trail


@st.composite
def with_other_widths(draw: st.DrawFn, text: str) -> str:
    """`text` with some of its punctuation written in the other width."""
    swap = {**{f: h for h, f in WIDTH_PAIRS}, **{h: f for h, f in WIDTH_PAIRS}}
    return "".join(swap[ch] if ch in swap and draw(st.booleans()) else ch for ch in text)


def wrapped(text: str, width: int) -> str:
    """Hard-wrapped every `width` characters between two Chinese characters, as old editors do."""
    out, run = [], 0
    for i, ch in enumerate(text):
        if run >= width and i and is_han(text[i - 1]) and is_han(ch):
            out.append("\r\n")
            run = 0
        out.append(ch)
        run += 1
    return "".join(out)


# --- idempotence ------------------------------------------------------------------------------


@SETTINGS
@given(st.text())
def test_normalise_is_idempotent_on_any_text(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once


@SETTINGS
@given(st.text(alphabet=[*HAN[:40], *FULL_PUNCT, *"，,.:;()（）“”\"'—–-…·・ \u3000\xa0\n\u200b\ufeffA1"]))
def test_normalise_is_idempotent_on_chinese_punctuation_soup(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once


# --- what is not a change ----------------------------------------------------------------------


@SETTINGS
@given(st.data(), paragraph)
def test_whitespace_does_not_change_the_normal_form(data: st.DataObject, text: str) -> None:
    assert normalise_text(data.draw(with_whitespace(text))) == normalise_text(text)


@SETTINGS
@given(st.data(), paragraph)
def test_punctuation_width_does_not_change_the_normal_form(data: st.DataObject, text: str) -> None:
    assert normalise_text(data.draw(with_other_widths(text))) == normalise_text(text)


@SETTINGS
@given(paragraph, st.integers(3, 40))
def test_line_wrapping_does_not_change_the_normal_form(text: str, width: int) -> None:
    assert normalise_text(wrapped(text, width)) == normalise_text(text)


@SETTINGS
@given(st.data(), paragraphs, st.integers(5, 40))
def test_all_three_at_once_keep_the_content_hash(data: st.DataObject, paras: list[str], width: int) -> None:
    variant = [wrapped(data.draw(with_whitespace(data.draw(with_other_widths(p)))), width) for p in paras]
    assert content_hash("关于推进数字经济发展的通知", variant) == content_hash(
        "关于推进数字经济发展的通知", paras
    )


@SETTINGS
@given(paragraph, paragraph)
def test_a_real_edit_still_changes_the_normal_form(text: str, other: str) -> None:
    """The other side: normalisation does not make different texts equal."""
    edited = text + other
    assert normalise_text(edited) != normalise_text(text)


# --- through whole pages ----------------------------------------------------------------------

TITLE = "关于加快推进数字经济发展的指导意见"


def extracted_hash(page: bytes, header_charset: str | None) -> str:
    text, _, _, bad = decode_html(page, header_charset)
    assert bad == 0
    return extract_document(text, "http://127.0.0.1/content/1.html").content_hash


@PAGE_SETTINGS
@given(st.data(), paragraphs, st.integers(8, 40), st.integers(0, 10**6))
def test_a_rewrapped_rewidthed_page_extracts_to_the_same_text(
    data: st.DataObject, paras: list[str], width: int, counter: int
) -> None:
    plain = gov_cn_page(TITLE, paras, counter=1).encode("utf-8")
    variant = [data.draw(with_other_widths(p)) for p in paras]
    noisy = gov_cn_page(TITLE, variant, counter=counter, wrap=width).encode("utf-8")
    assert extracted_hash(noisy, "utf-8") == extracted_hash(plain, "utf-8")


@PAGE_SETTINGS
@given(paragraphs, st.integers(8, 40))
def test_the_same_page_in_gbk_and_utf8_extracts_to_the_same_text(paras: list[str], width: int) -> None:
    utf8 = provincial_page(TITLE, paras, charset="utf-8").encode("utf-8")
    gbk = provincial_page(TITLE, paras, charset="gb2312", wrap=width).encode("gbk")
    assert extracted_hash(gbk, None) == extracted_hash(utf8, "utf-8")


# --- the unchanged-page fast path (extraction.equivalence) --------------------------------------

SIDEBARS = [
    ("数据要素市场化配置", "数字政府建设"),
    ("数字政府建设", "数据要素市场化配置", "新的相关文章"),
    (),
]


@st.composite
def page_pair(draw: st.DrawFn) -> tuple[str, str]:
    """A page and the same page refetched: its chrome changed, and perhaps its text or title too."""
    style = draw(st.sampled_from(["gov", "provincial"]))
    paras = draw(paragraphs)
    title = TITLE
    build = gov_cn_page if style == "gov" else provincial_page
    old = build(title, paras, counter=draw(st.integers(0, 10**6)), sidebar=draw(st.sampled_from(SIDEBARS)))
    new_paras, new_title = list(paras), title
    edit = draw(st.sampled_from(["none", "none", "char", "paragraph", "title", "wrap"]))
    if edit == "char":
        i = draw(st.integers(0, len(new_paras) - 1))
        k = draw(st.integers(0, len(new_paras[i]) - 1))
        new_paras[i] = new_paras[i][:k] + draw(st.sampled_from(HAN)) + new_paras[i][k + 1 :]
    elif edit == "paragraph":
        new_paras.insert(draw(st.integers(0, len(new_paras))), draw(paragraph))
    elif edit == "title":
        new_title = title + "（修订）"
    kwargs = {"wrap": draw(st.integers(8, 30))} if edit == "wrap" else {}
    new = build(
        new_title,
        new_paras,
        counter=draw(st.integers(0, 10**6)),
        sidebar=draw(st.sampled_from(SIDEBARS)),
        **kwargs,
    )
    return old, new


@PAGE_SETTINGS
@given(page_pair())
def test_pages_equivalent_but_for_chrome_extract_to_the_same_text(pair: tuple[str, str]) -> None:
    """The fast path may only skip extraction where extraction would find the same text."""
    old, new = pair
    if chrome_equivalent(old, new):
        url = "http://127.0.0.1/content/1.html"
        assert extract_document(new, url).content_hash == extract_document(old, url).content_hash


@PAGE_SETTINGS
@given(
    paragraphs,
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.sampled_from(SIDEBARS),
    st.sampled_from(SIDEBARS),
)
def test_a_page_whose_chrome_alone_changed_takes_the_fast_path(
    paras: list[str], counter_a: int, counter_b: int, side_a: tuple[str, ...], side_b: tuple[str, ...]
) -> None:
    for build in (gov_cn_page, provincial_page):
        old = build(TITLE, paras, counter=counter_a, sidebar=side_a)
        new = build(TITLE, paras, counter=counter_b, sidebar=side_b)
        assert chrome_equivalent(old, new)


def test_a_change_inside_the_body_is_never_chrome() -> None:
    paras = corpus_paragraphs("004")[1:30]
    old = gov_cn_page(TITLE, paras, counter=1)
    before = old.replace(paras[3], paras[3] + "<span>35</span>")
    after = old.replace(paras[3], paras[3] + "<span>50</span>")
    assert not chrome_equivalent(before, after)
    # A counter inside the body is chrome for extraction too: both agree that nothing changed.
    before = old.replace(paras[3], paras[3] + '<span class="hits">35</span>')
    after = old.replace(paras[3], paras[3] + '<span class="hits">50</span>')
    url = "http://127.0.0.1/content/1.html"
    assert chrome_equivalent(before, after)
    assert extract_document(before, url).content_hash == extract_document(after, url).content_hash
    assert not chrome_equivalent(old, old.replace("<title>", "<title>新"))
    assert not chrome_equivalent(old, old.replace(paras[5], paras[5][:-1]))
