"""Reference extraction (policywatch.citations): one test per drafting convention, and the measured
precision and recall on the two labelled sets of real passages (tests/fixtures/references)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.references_eval import evaluate
from policywatch.citations import FoundReferences, find_references, is_document_title, publishes

SETS = Path(__file__).parent / "fixtures" / "references"


def refs(
    text: str, title: str | None = None, number: str | None = None
) -> list[tuple[str, str | None, str | None]]:
    return [(r.kind, r.title, r.doc_number) for r in find_references(text, title=title, number=number)]


def test_a_title_and_its_number_are_one_reference_in_any_bracket_form() -> None:
    text = "根据《国务院关于印发“十四五”数字经济发展规划的通知》（国发[2021]第29号）要求，做好以下工作。"
    assert refs(text) == [("cites", "国务院关于印发“十四五”数字经济发展规划的通知", "国发〔2021〕29号")]


def test_references_found_ahead_serve_only_the_arguments_they_were_found_for() -> None:
    # The observe stage finds a text's references in its worker; the version stage uses them only
    # when the stored text, title and own number are the ones they were found for (an existing
    # document keeps the number it had: then they are found again, and the own number drops out).
    text = "根据国发〔2021〕29号文件，印发本方案。同时落实国办发〔2024〕12号文件要求。"
    ahead = FoundReferences.of(text, "某方案", None)
    assert [r.doc_number for r in ahead.for_args(text, "某方案", None) or []] == [
        "国发〔2021〕29号",
        "国办发〔2024〕12号",
    ]
    assert ahead.for_args(text, "某方案", "国发〔2021〕29号") is None
    assert ahead.for_args(text + "。", "某方案", None) is None
    assert ahead.for_args(text, "另一方案", None) is None
    assert [r.doc_number for r in find_references(text, title="某方案", number="国发〔2021〕29号")] == [
        "国办发〔2024〕12号"
    ]


def test_a_bare_number_is_a_reference_and_lead_in_verbs_are_not_part_of_it() -> None:
    assert refs("请各地贯彻落实国办发〔2024〕12号文件精神。") == [("implements", None, "国办发〔2024〕12号")]


def test_repeals_take_every_title_the_clause_lists() -> None:
    text = "本办法自2025年1月1日起施行。《数据出境管理暂行办法》、《数据安全评估指南》同时废止。"
    assert refs(text) == [
        ("repeals", "数据出境管理暂行办法", None),
        ("repeals", "数据安全评估指南", None),
    ]


def test_the_clause_verb_wins_over_the_sentence_verb() -> None:
    text = "根据《中华人民共和国数据安全法》，对《公共数据开放办法》作如下修改："
    assert refs(text) == [
        ("cites", "中华人民共和国数据安全法", None),
        ("amends", "公共数据开放办法", None),
    ]


def test_a_title_that_holds_a_verb_is_masked() -> None:
    # 废止 and 修改 inside 《》 are the cited title's words, not this text's verbs.
    text = "依照《国务院关于修改和废止部分行政法规的决定》的规定办理。"
    assert refs(text) == [("cites", "国务院关于修改和废止部分行政法规的决定", None)]


def test_an_amending_act_in_a_history_note_is_cited_not_amended() -> None:
    text = "2021年5月27日省人大常委会《关于修改〈某省数据条例〉等四件地方性法规的决定》第二次修正"
    assert refs(text) == [("cites", "关于修改〈某省数据条例〉等四件地方性法规的决定", None)]


def test_implements_by_verb_by_plan_basis_and_by_title() -> None:
    assert refs("为贯彻落实《数字中国建设整体布局规划》，结合本省实际，制定本方案。") == [
        ("implements", "数字中国建设整体布局规划", None)
    ]
    assert refs(
        "依据国家《“十四五”数字经济发展规划》，编制本规划。", title="某省“十四五”数字经济发展规划"
    ) == [("implements", "“十四五”数字经济发展规划", None)]
    # A 办法 made under a law cites its legal basis ...
    assert refs("根据《中华人民共和国网络安全法》，制定本办法。", title="某市网络安全管理办法") == [
        ("cites", "中华人民共和国网络安全法", None)
    ]
    # ... unless it says it is the law's implementing measure.
    assert refs("根据《中华人民共和国网络安全法》，制定本办法。", title="某市实施《网络安全法》办法") == [
        ("implements", "中华人民共和国网络安全法", None)
    ]


def test_what_a_notice_publishes_and_short_names_are_not_references() -> None:
    title = "关于印发《某省公共数据授权运营管理办法》的通知"
    text = (
        "现将《某省公共数据授权运营管理办法》印发给你们，请认真贯彻执行。"
        "按照《关于构建数据基础制度更好发挥数据要素作用的意见》（以下简称《意见》）要求，"
        "研究制定了《某省公共数据授权运营管理办法》。《意见》提出……"
    )
    assert refs(text, title=title) == [("implements", "关于构建数据基础制度更好发挥数据要素作用的意见", None)]
    assert publishes(title) == "某省公共数据授权运营管理办法"


def test_own_number_is_not_a_reference_but_a_new_edition_repeals_the_old_one() -> None:
    assert refs("国数发〔2024〕3号", number="国数发[2024]3号") == []
    text = "本条例自2026年1月1日起施行。2012年通过的《某市数据条例》同时废止。"
    assert refs(text, title="某市数据条例") == [("repeals", "某市数据条例", None)]


def test_a_clause_ends_at_the_end_of_its_line() -> None:
    # The heading's number is cited by the line under it, not published by the next line's 现将.
    text = "根据国办发〔2024〕12号\n现将《某市数据条例实施细则》印发给你们"
    assert refs(text) == [("cites", None, "国办发〔2024〕12号")]


def test_titles_that_are_not_documents() -> None:
    assert not is_document_title("人民日报")
    assert not is_document_title("求是")
    assert not is_document_title("检察建议书")
    assert not is_document_title("通知")  # a back-reference to a document named earlier
    assert is_document_title("民法典")
    assert is_document_title("数字商务三年行动计划(2024—2026年)")
    assert is_document_title("关于加强数据资产管理的指导意见（征求意见稿）")


def test_a_long_text_stays_fast_enough_to_run_on_every_version() -> None:
    text = "依据《中华人民共和国数据安全法》（主席令第84号），制定本办法。各地要加强数据安全管理。" * 800
    found = find_references(text)  # ~40 KB: must not be quadratic in the number of references
    assert [r.kind for r in found] == ["cites"]


@pytest.mark.parametrize(
    ("name", "floor"),
    [("labelled", 0.95), ("heldout", 0.85)],
)
def test_measured_precision_and_recall(name: str, floor: float) -> None:
    """labelled.jsonl: 159 references (measured 0.987 / 0.987; the rules were adjusted after reading it);
    heldout.jsonl: 45 references never tuned on (measured precision 0.907, recall 0.867)."""
    result = evaluate(SETS / f"{name}.jsonl")
    assert result["references"] >= (100 if name == "labelled" else 40)
    assert result["precision"] >= floor, result["false_positives"]
    assert result["recall"] >= floor, result["misses"]
