"""policywatch.extraction.normalise and extraction.docmeta: comparison forms of text, document numbers, dates."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policywatch.extraction import (
    canonical_doc_number,
    content_hash,
    normalise_paragraphs,
    normalise_text,
    parse_date,
    parse_doc_number,
)

# ----------------------------------------------------------------------------- normalise_text


def test_full_width_and_half_width_punctuation_are_equal() -> None:
    full = "各市、县（区）人民政府，省政府各部门：现将《规划》印发给你们；请认真贯彻执行！"
    half = "各市、县(区)人民政府,省政府各部门:现将《规划》印发给你们;请认真贯彻执行!"
    assert normalise_text(full) == normalise_text(half)
    # NFKC maps ，：（）；！ to ASCII; 、《》。 have no half-width form and stay.
    assert normalise_text(full) == half


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("“十四五”时期", '"十四五"时期'),
        ("„数字‟经济", '"数字"经济'),
        ("‘双碳’目标", "'双碳'目标"),
        ("数字经济——发展规划", "数字经济--发展规划"),
        ("2021–2023年", "2021-2023年"),
        ("2021―2023年", "2021-2023年"),
        ("马克思・韦伯", "马克思·韦伯"),
        ("马克思･韦伯", "马克思·韦伯"),
        ("等等…", "等等..."),
        ("ＧＤＰ增长５％", "GDP增长5%"),
    ],
)
def test_quote_dash_dot_and_width_variants_are_unified(variant: str, expected: str) -> None:
    assert normalise_text(variant) == expected


def test_line_wrapped_chinese_equals_unwrapped() -> None:
    unwrapped = "为深入贯彻习近平总书记关于数字经济发展的重要论述,全面落实党中央、国务院决策部署。"
    wrapped = "为深入贯彻习近平总书记关于\r\n数字经济发展的重要论述,\n    全面落实党中央、\n国务院决策部署。"
    assert normalise_text(wrapped) == normalise_text(unwrapped) == unwrapped


def test_ideographic_space_nbsp_and_zero_width_characters() -> None:
    assert normalise_text("\u3000\u3000为深入贯彻\u3000落实") == "为深入贯彻落实"
    assert normalise_text("\xa0\xa0\xa0\xa0现将规划印发给你们") == "现将规划印发给你们"
    assert normalise_text("5G\xa0基站") == "5G基站"
    assert normalise_text("数字\u200b经济\ufeff") == "数字经济"
    assert normalise_text("5\u200bG") == "5G"


def test_spaces_between_latin_words_are_kept_but_folded() -> None:
    assert normalise_text("Digital  Economy\u3000Plan") == "Digital Economy Plan"
    assert normalise_text("COVID 19") == "COVID 19"
    # next to CJK, the space goes either way
    assert normalise_text("建成 5G 基站 3.4 万个") == "建成5G基站3.4万个"
    assert normalise_text("GDP (国内生产总值)") == "GDP(国内生产总值)"


def test_space_next_to_a_quote_around_chinese_is_removed() -> None:
    assert normalise_text("“十四五” GDP") == normalise_text("“十四五”GDP") == '"十四五"GDP'
    assert normalise_text('"十四五" GDP') == '"十四五"GDP'
    assert normalise_text('the "plan" is') == 'the "plan" is'
    # curly quotes are Chinese (full-width) punctuation: spaces next to them go
    assert normalise_text("“十四五” 规划") == normalise_text(" “ 十四五 ”规划") == '"十四五"规划'


def test_empty_and_whitespace_only() -> None:
    assert normalise_text("") == ""
    assert normalise_text(" \u3000\xa0\r\n\t\u200b") == ""


@pytest.mark.parametrize(
    "text",
    [
        "各市、县（区）人民政府，省政府各部门：",
        "“十四五”  时期 —— 数字经济…",
        "e\u200b\u0301",  # deleting the zero-width space lets NFKC compose é
        "x \u201c 中",
        "Ⅱ ① ㈠ ⑴",
    ],
)
def test_idempotent_examples(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_idempotent_property(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once


_CJK_CHARS = st.sampled_from(
    list("数字经济发展规划国务院通知一二三年月日省市县区、。，：；“”《》（）〔〕【】")
)
_WHITESPACE = st.lists(
    st.sampled_from([" ", "\u3000", "\xa0", "\n", "\r\n", "\t", "\u200b", "\u2028"]), min_size=1, max_size=4
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_CJK_CHARS, st.one_of(st.just(""), _WHITESPACE)), min_size=1, max_size=40))
def test_whitespace_inserted_between_cjk_characters_does_not_count(pieces: list[tuple[str, str]]) -> None:
    plain = "".join(ch for ch, _ in pieces)
    spaced = "".join(ch + ws for ch, ws in pieces)
    assert normalise_text(spaced) == normalise_text(plain)


# ----------------------------------------------------------------------------- paragraphs and hash


def test_normalise_paragraphs_drops_empty_ones() -> None:
    assert normalise_paragraphs(["第一段，内容", "  \u3000 ", "", "第二\n段"]) == ["第一段,内容", "第二段"]


def test_content_hash_is_sha256_of_normalised_title_and_paragraphs() -> None:
    expected = hashlib.sha256("标题:通知\n第一段,内容\n第二段".encode()).hexdigest()
    assert content_hash("标题：通知", ["第一段，内容", "\u3000", "第二\r\n段"]) == expected


def test_content_hash_ignores_width_and_wrapping_but_not_text() -> None:
    base = content_hash("关于印发规划的通知", ["到2025年，建成5G基站3.4万个。", "（一）政策体系加快完善。"])
    assert (
        content_hash(" 关于印发规划的通知", ["到2025年,建成 5G 基站\n3.4万个。", "(一)政策体系加快完善。"])
        == base
    )
    assert (
        content_hash("关于印发规划的通知", ["到2025年，建成5G基站3.5万个。", "（一）政策体系加快完善。"])
        != base
    )
    assert (
        content_hash("关于印发计划的通知", ["到2025年，建成5G基站3.4万个。", "（一）政策体系加快完善。"])
        != base
    )
    # a paragraph boundary is part of the text
    assert (
        content_hash("关于印发规划的通知", ["到2025年，建成5G基站3.4万个。（一）政策体系加快完善。"]) != base
    )


# ----------------------------------------------------------------------------- document numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("国务院关于印发“十四五”数字经济发展规划的通知（国发〔2021〕29号）", "国发〔2021〕29号"),
        ("赣府发[2022]10号", "赣府发[2022]10号"),
        ("工信部联规【2023】5号", "工信部联规【2023】5号"),
        ("发改高技(2024)12号", "发改高技(2024)12号"),
        ("发改高技（2024）12号", "发改高技（2024）12号"),
        ("国办函〔2024〕第3号", "国办函〔2024〕第3号"),
        ("京政办发﹝2023﹞7号", "京政办发﹝2023﹞7号"),
        ("根据国发〔2021〕29号文件精神", "国发〔2021〕29号"),
        ("文号：赣府发〔2022〕10号  浏览次数：12", "赣府发〔2022〕10号"),
        ("  国办发 〔2019〕 38号 ", "国办发 〔2019〕 38号"),
    ],
)
def test_parse_doc_number(text: str, expected: str) -> None:
    assert parse_doc_number(text) == expected


@pytest.mark.parametrize(
    "text", ["", "2021年发布的第29号令", "京ICP备05070218号", "网站标识码bm01000001", "〔2021〕29号"]
)
def test_parse_doc_number_none(text: str) -> None:
    assert parse_doc_number(text) is None


@pytest.mark.parametrize(
    "form",
    [
        "国办函〔2024〕3号",
        "国办函〔2024〕第3号",
        "国办函[2024]3号",
        "国办函[2024]第3号",
        "国办函【2024】3号",
        "国办函【2024】第3号",
        "国办函(2024)3号",
        "国办函（2024）第3号",
        "国办函［2024］3号",
        "国办函﹝2024﹞3号",
        "国办函 〔2024〕 第 3 号",
        "国办函〔2024〕03号",
    ],
)
def test_canonical_doc_number_equal_across_bracket_forms(form: str) -> None:
    assert canonical_doc_number(form) == "国办函〔2024〕3号"


def test_canonical_doc_number_keeps_differences() -> None:
    assert canonical_doc_number("国发〔2021〕29号") != canonical_doc_number("国发〔2021〕28号")
    assert canonical_doc_number("国发〔2021〕29号") != canonical_doc_number("国发〔2022〕29号")
    assert canonical_doc_number("国发〔2021〕29号") != canonical_doc_number("国办发〔2021〕29号")
    assert canonical_doc_number("国发〔2021〕10号") == canonical_doc_number("国发[2021]第10号")


# ----------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "text",
    [
        "2022年5月25日",
        "2022年05月25日",
        "2022 年 5 月 25 日",
        "2022-05-25",
        "2022-5-25 10:30:00",
        "2022/5/25",
        "2022.05.25",
        "发布时间：2022-05-25 10:30",
        "２０２２年５月２５日",
        "二〇二二年五月二十五日",
    ],
)
def test_parse_date(text: str) -> None:
    assert parse_date(text) == "2022-05-25"


@pytest.mark.parametrize("text", ["", "没有日期", "2022年13月1日", "2022-02-30", "12022-05-25", "第2022号"])
def test_parse_date_none(text: str) -> None:
    assert parse_date(text) is None


def test_parse_date_skips_invalid_and_takes_first_valid() -> None:
    assert parse_date("2022-02-30 更正为 2022年3月1日") == "2022-03-01"
    assert parse_date("二〇二一年十二月十二日") == "2021-12-12"
