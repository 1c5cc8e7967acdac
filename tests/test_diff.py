"""Tests for policydiff: fixtures (before/after pairs built from the corpus), corpus-scale edits,
JSON shape, renderers and significance ordering."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from policywatch.policydiff import (
    Block,
    DocumentDiff,
    Span,
    apply_diff,
    diff_sentences,
    diff_texts,
    render_html,
    render_text,
    split_sentences,
    tokenize,
)

FIXTURES = Path(__file__).parent / "fixtures"
DIFF_DIR = FIXTURES / "diff"
from policywatch.demosite import CORPUS_DIR  # noqa: E402

MOVED = "已纳入首批试点范围的城市不得重复申报。"
FIGURE_SENTENCE = "2024年将选择35个左右城市开展第二批试点工作,试点城市应为地级市及以上,包括各省(区)的省会城市、其他地级市,直辖市所辖区县,以及新疆生产建设兵团(以下简称兵团)。"


def read_paragraphs(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def load(name: str) -> tuple[list[str], list[str]]:
    return (
        read_paragraphs(DIFF_DIR / f"{name}.before.txt"),
        read_paragraphs(DIFF_DIR / f"{name}.after.txt"),
    )


def corpus_paragraphs(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def largest_corpus_document() -> list[str]:
    path = max(CORPUS_DIR.glob("*.txt"), key=lambda p: len(p.read_text(encoding="utf-8")))
    return corpus_paragraphs(path)


def span_texts(block: Block) -> list[tuple[str, str, str]]:
    return [(s.op, s.old_text, s.new_text) for s in block.spans]


# --------------------------------------------------------------------------------------------------
# split_sentences / tokenize


def test_split_sentences_keeps_terminators_and_closers():
    p = "现将《规划》印发给你们,请认真贯彻执行。“好!”他说;对吗?没有结尾"
    assert split_sentences(p) == [
        "现将《规划》印发给你们,请认真贯彻执行。",
        "“好!”",
        "他说;",
        "对吗?",
        "没有结尾",
    ]


def test_split_sentences_full_width_and_empty():
    assert split_sentences("一！二？三；四。") == ["一！", "二？", "三；", "四。"]
    assert split_sentences("") == []
    assert split_sentences("。。") == ["。。"]


def test_tokenize_numbers_are_one_token():
    assert tokenize("增加值8354亿元,比重达32.5%") == [
        "增", "加", "值", "8354", "亿", "元", ",", "比", "重", "达", "32.5", "%",
    ]  # fmt: skip
    assert tokenize("8,354个") == ["8,354", "个"]
    assert tokenize("GDP(国内)") == ["GDP", "(", "国", "内", ")"]
    # a comma between years is a list separator, not a thousands separator
    assert tokenize("2021,2022年") == ["2021", ",", "2022", "年"]


# --------------------------------------------------------------------------------------------------
# diff_sentences


def test_figure_change_is_one_span_of_the_figure():
    spans = diff_sentences("选择35个左右城市", "选择50个左右城市")
    assert [(s.op, s.old_text, s.new_text) for s in spans] == [("replace", "35", "50")]
    assert (spans[0].old_start, spans[0].old_end, spans[0].new_start, spans[0].new_end) == (2, 4, 2, 4)


def test_number_is_replaced_whole():
    spans = diff_sentences("增加值8354亿元", "增加值8355亿元")
    assert [(s.op, s.old_text, s.new_text) for s in spans] == [("replace", "8354", "8355")]


def test_insert_and_delete_spans():
    assert [(s.op, s.old_text, s.new_text) for s in diff_sentences("加快发展。", "加快推动发展。")] == [
        ("insert", "", "推动")
    ]
    spans = diff_sentences("加快推动发展。", "加快发展。")
    assert [(s.op, s.old_text, s.new_text) for s in spans] == [("delete", "推动", "")]
    assert spans[0].new_start == spans[0].new_end == 2


def test_identical_sentences_have_no_spans():
    assert diff_sentences("不变。", "不变。") == ()


# --------------------------------------------------------------------------------------------------
# fixtures


def test_fixture_no_change():
    old, new = load("no_change")
    d = diff_texts(old, new)
    assert d.changes == ()
    assert d.significance == 0.0
    assert all(b.op == "equal" for b in d.blocks)
    assert apply_diff(old, d) == "\n".join(new)


def test_fixture_one_char():
    old, new = load("one_char")
    d = diff_texts(old, new)
    assert [b.op for b in d.changes] == ["replace"]
    (b,) = d.changes
    assert (
        b.old
        == "以数据、场景等为纽带,推动商务领域线上线下融合、城市乡村融合、国内国际融合,破除行业壁垒,鼓励跨界发展,有效推动内外贸一体化进程。"
    )
    assert (
        b.new
        == "以数据、场景等为纽带,推动商务领域线上线下融合、城市乡村融合、国内国外融合,破除行业壁垒,鼓励跨界发展,有效推动内外贸一体化进程。"
    )
    assert span_texts(b) == [("replace", "际", "外")]
    s = b.spans[0]
    assert b.old[s.old_start : s.old_end] == "际" and b.new[s.new_start : s.new_end] == "外"
    assert 0.0 < d.significance < 0.1


def test_fixture_figure():
    old, new = load("figure")
    d = diff_texts(old, new)
    assert [b.op for b in d.changes] == ["replace"]
    (b,) = d.changes
    assert b.old == FIGURE_SENTENCE
    assert b.new == FIGURE_SENTENCE.replace("35个", "50个")
    assert span_texts(b) == [("replace", "35", "50")]
    assert (b.old_paragraph, b.new_paragraph) == (1, 1)


def test_fixture_paragraph_added():
    old, new = load("paragraph_added")
    d = diff_texts(old, new)
    assert [b.op for b in d.changes] == ["insert"]
    (b,) = d.changes
    assert b.old is None and b.spans == ()
    assert b.new == new[7]
    assert b.new.startswith("一是培育创新主体。") and b.new.endswith("多场景释放数据要素价值。")
    # in reading order of the new text: between the paragraphs that surround it
    blocks = list(d.blocks)
    k = blocks.index(b)
    assert blocks[k - 1].new == new[6] and blocks[k + 1].new == new[8]


def test_fixture_paragraph_removed():
    old, new = load("paragraph_removed")
    d = diff_texts(old, new)
    assert [b.op for b in d.changes] == ["delete"]
    (b,) = d.changes
    assert b.new is None
    assert b.old == old[6]
    assert b.old.startswith("坚持数据赋能。")
    blocks = list(d.blocks)
    k = blocks.index(b)
    assert blocks[k - 1].new == old[5] and blocks[k + 1].new == old[7]


def test_fixture_sentence_moved():
    old, new = load("sentence_moved")
    d = diff_texts(old, new)
    assert [b.op for b in d.changes] == ["move"]
    (b,) = d.changes
    assert b.old == b.new == MOVED
    assert b.spans == ()
    assert (b.old_paragraph, b.new_paragraph) == (1, 5)
    assert d.significance > 0.0


def test_fixture_sentence_moved_and_edited():
    old, new = load("sentence_moved_edited")
    d = diff_texts(old, new)
    assert [b.op for b in d.changes] == ["move"]
    (b,) = d.changes
    assert b.old == MOVED
    assert b.new == "已纳入首批和第二批试点范围的城市不得重复申报。"
    assert span_texts(b) == [("insert", "", "和第二批")]
    assert (b.old_paragraph, b.new_paragraph) == (1, 5)


@pytest.mark.parametrize(
    "name",
    [
        "no_change",
        "one_char",
        "figure",
        "paragraph_added",
        "paragraph_removed",
        "sentence_moved",
        "sentence_moved_edited",
    ],
)
def test_fixture_blocks_rebuild_both_sides(name):
    old, new = load(name)
    d = diff_texts(old, new)
    assert apply_diff(old, d) == "\n".join(new)
    news = [b.new_index for b in d.blocks if b.new is not None]
    assert news == sorted(news)
    if old != new:
        with pytest.raises(ValueError):
            apply_diff(new, d)


def test_replace_and_insert_in_one_region_keep_reading_order():
    old = ["第一句。第二句话说明情况。第三句。"]
    new = ["第一句。第二句话说明有关情况。全新插入的内容在这里出现。第三句。"]
    d = diff_texts(old, new)
    assert [(b.op, b.old, b.new) for b in d.blocks] == [
        ("equal", "第一句。", "第一句。"),
        ("replace", "第二句话说明情况。", "第二句话说明有关情况。"),
        ("insert", None, "全新插入的内容在这里出现。"),
        ("equal", "第三句。", "第三句。"),
    ]
    assert span_texts(d.blocks[1]) == [("insert", "", "有关")]


def test_unrelated_rewrite_is_delete_and_insert():
    old = ["甲乙丙丁戊己庚辛。"]
    new = ["数字经济规划发布。"]
    d = diff_texts(old, new)
    assert sorted(b.op for b in d.changes) == ["delete", "insert"]
    assert next(b.op for b in d.changes) == "delete"  # a delete reads before the insert that replaces it


def test_paragraph_split_without_text_change():
    old = ["第一句。第二句。"]
    new = ["第一句。", "第二句。"]
    d = diff_texts(old, new)
    assert d.changes == () and d.significance == 0.0
    assert apply_diff(old, d) == "第一句。\n第二句。"


# --------------------------------------------------------------------------------------------------
# corpus scale


@pytest.mark.parametrize("where", [0.1, 0.5, 0.9])
def test_one_character_change_in_largest_document(where):
    doc = largest_corpus_document()
    assert sum(map(len, doc)) > 10_000
    # pick a Han character inside a long sentence near the requested position
    flat = [(p, off) for p, para in enumerate(doc) for off in range(len(para))]
    start = int(len(flat) * where)
    for p, off in flat[start:]:
        ch = doc[p][off]
        sentence_pos = 0
        for s in split_sentences(doc[p]):
            if sentence_pos <= off < sentence_pos + len(s):
                break
            sentence_pos += len(s)
        if "\u4e00" <= ch <= "\u9fff" and len(s) >= 20:
            break
    else:  # pragma: no cover - corpus without a suitable character
        pytest.fail("no Han character found")
    replacement = "甲" if ch != "甲" else "乙"
    new = list(doc)
    new[p] = doc[p][:off] + replacement + doc[p][off + 1 :]

    d = diff_texts(doc, new)
    assert len(d.changes) == 1
    (b,) = d.changes
    assert b.op == "replace"
    assert b.old == s
    assert b.new == s[: off - sentence_pos] + replacement + s[off - sentence_pos + 1 :]
    assert span_texts(b) == [("replace", ch, replacement)]
    assert b.spans[0].old_start == off - sentence_pos
    assert 0.0 < d.significance < 0.1
    assert apply_diff(doc, d) == "\n".join(new)


def test_sixty_thousand_character_document_paragraph_swap():
    paras: list[str] = []
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        paras += corpus_paragraphs(path)
    doc = list(paras)
    while sum(map(len, doc)) < 60_000:
        doc += [f"第{len(doc)}段:" + p for p in paras]
    assert sum(map(len, doc)) >= 60_000
    new = list(doc)
    i = next(
        k for k in range(len(doc) // 2, len(doc)) if len(split_sentences(doc[k])) == 1 and len(doc[k]) > 30
    )
    moved = new.pop(i)
    new.insert(10, moved)
    d = diff_texts(doc, new)
    assert [(b.op, b.old, b.new) for b in d.changes] == [("move", moved, moved)]
    assert apply_diff(doc, d) == "\n".join(new)


# --------------------------------------------------------------------------------------------------
# significance


def _sig(old: list[str], new: list[str]) -> float:
    return diff_texts(old, new).significance


def test_significance_orders_kinds_of_change():
    base = ["到2025年,全省数字经济增加值达到35000亿元,数字经济核心产业增加值占GDP比重达到9%。"]
    figure = [base[0].replace("9%", "8%")]  # one digit against one Han character below
    han = [base[0].replace("全省", "全市")]
    particle = [base[0].replace("数字经济核心", "数字经济的核心")]
    punct = [base[0].replace("9%。", "9%;")]
    para = [*base, "加快建设数字政府,推进政务服务一网通办,提升治理效能。"]
    s_fig, s_han, s_part, s_punct, s_para = (_sig(base, x) for x in (figure, han, particle, punct, para))
    assert 0.0 < s_punct < s_part < s_han < s_fig <= 1.0
    assert s_han < s_para <= 1.0
    assert s_fig > 3 * s_han  # a changed figure counts noticeably more
    assert _sig(base, list(base)) == 0.0


def test_significance_of_full_rewrite_is_high():
    old = ["甲乙丙丁戊己庚辛壬癸。子丑寅卯辰巳午未申酉戌亥。"]
    new = ["数字经济发展规划正式发布实施。各地要认真贯彻落实。"]
    assert _sig(old, new) > 0.9


# --------------------------------------------------------------------------------------------------
# JSON


def test_to_json_shape():
    old, new = load("figure")
    d = diff_texts(old, new)
    out = d.to_json("v1", "v2")
    assert set(out) == {"old_version_id", "new_version_id", "significance", "changes"}
    assert out["old_version_id"] == "v1" and out["new_version_id"] == "v2"
    assert out["significance"] == d.significance
    (change,) = out["changes"]
    assert {"op", "old", "new", "spans"} <= set(change)
    assert change["op"] == "replace"
    assert change["old"] == FIGURE_SENTENCE
    (span,) = change["spans"]
    assert set(span) == {"op", "old", "new", "old_text", "new_text"}
    s = d.changes[0].spans[0]
    assert span == {
        "op": "replace",
        "old": [s.old_start, s.old_end],
        "new": [s.new_start, s.new_end],
        "old_text": "35",
        "new_text": "50",
    }
    assert FIGURE_SENTENCE[span["old"][0] : span["old"][1]] == "35"
    json.dumps(out, ensure_ascii=False)  # serialisable


def test_to_json_insert_delete_have_null_sides():
    out = diff_texts(["旧的段落内容。"], ["完全不同的新文本。"]).to_json(1, 2)
    ops = {c["op"]: c for c in out["changes"]}
    assert ops["delete"]["new"] is None and ops["delete"]["spans"] == []
    assert ops["insert"]["old"] is None


def test_span_and_block_are_frozen():
    s = Span("replace", 0, 1, 0, 1, "a", "b")
    with pytest.raises(AttributeError):
        s.op = "insert"  # type: ignore[misc]
    d = DocumentDiff((), 0.0)
    assert d.changes == ()


# --------------------------------------------------------------------------------------------------
# renderers


def test_render_html_escapes_and_styles():
    old = ["第一条规定。", "正文内容保持不变。"]
    new = ["第一条<script>alert(1)</script>规定。", "正文内容保持不变。"]
    out = render_html(diff_texts(old, new))
    assert "<script>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert re.search(r'<ins [^>]*style="background:#ccffd8;color:#055d20;text-decoration:none"', out)
    assert "<html" not in out


def test_render_html_delete_and_move():
    old, new = load("sentence_moved_edited")
    out = render_html(diff_texts(old, new))
    assert re.search(r'<ins [^>]*style="[^"]*background:#ccffd8[^"]*">和第二批</ins>', out)
    assert "moved" in out
    out = render_html(diff_texts(*load("paragraph_removed")))
    assert re.search(
        r'<del [^>]*style="background:#ffd7d5;color:#82071e;text-decoration:line-through[^"]*">坚持数据赋能。',
        out,
    )


def test_render_html_escapes_deleted_text_and_folds():
    old = [f"第{k}句没有变化。" for k in range(20)] + ["<b>旧</b>内容被删除了。"]
    new = [f"第{k}句没有变化。" for k in range(20)]
    out = render_html(diff_texts(old, new), context=2)
    assert "&lt;b&gt;旧&lt;/b&gt;" in out and "<b>" not in out
    assert "… (18 unchanged sentences) …" in out
    assert "第0句" not in out and "第18句没有变化。" in out


def test_render_text_marks_and_folds():
    old, new = load("figure")
    d = diff_texts(old, new)
    text = render_text(d, context=1)
    lines = text.splitlines()
    assert "! " + FIGURE_SENTENCE.replace("35", "[-35-]{+50+}") in lines
    assert lines[0] == "  (2)支持对象"
    total = sum(len(split_sentences(p)) for p in new)
    # shown: 1 context sentence before, the change, 1 context sentence after
    assert lines[-1] == f"… ({total - 3} unchanged sentences) …"
    assert len(lines) == 4


def test_render_text_insert_delete_move():
    assert (
        "+ " + load("paragraph_added")[1][7] in render_text(diff_texts(*load("paragraph_added"))).splitlines()
    )
    assert (
        "- " + load("paragraph_removed")[0][6]
        in render_text(diff_texts(*load("paragraph_removed"))).splitlines()
    )
    text = render_text(diff_texts(*load("sentence_moved_edited")), context=0)
    assert (
        text.splitlines()[1]
        == "~ 已纳入首批{+和第二批+}试点范围的城市不得重复申报。  (moved from paragraph 2)"
    )
    assert text.splitlines()[0].startswith("… (")


def test_render_no_change_is_all_folded():
    old, new = load("no_change")
    total = sum(len(split_sentences(p)) for p in old)
    assert render_text(diff_texts(old, new)) == f"… ({total} unchanged sentences) …\n"
    assert "<del" not in render_html(diff_texts(old, new))
