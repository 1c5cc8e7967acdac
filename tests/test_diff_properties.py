"""Property tests for policydiff: diffs rebuild both texts, spans are exact, splitting is lossless."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policywatch.policydiff import (
    DocumentDiff,
    Span,
    apply_diff,
    diff_sentences,
    diff_texts,
    split_sentences,
    tokenize,
)

SETTINGS = settings(max_examples=200, deadline=None)

HAN = "数字经济发展规划的和了推进政府建设城市试点"
DIGITS = "0123456789"
LATIN = "GDPab"
PUNCT = "。！？；!?;,、“”()《》%. "
ALPHABET = HAN + DIGITS + LATIN + PUNCT
TERMINATORS = "。！？；!?;"
CLOSERS = "”’」』)）]】》〉"

texts = st.text(alphabet=ALPHABET, max_size=40)
# sentences ending in a terminator, so that paragraphs have several sentences
sentences = st.builds(
    lambda body, end: body + end, st.text(alphabet=ALPHABET, max_size=15), st.sampled_from("。！？；;")
)
paragraphs = st.one_of(texts, st.lists(sentences, min_size=1, max_size=5).map("".join))
documents = st.lists(paragraphs, max_size=8)


@st.composite
def edited(draw):
    """(old, new) where new is old after a few paragraph/sentence/character edits."""
    old = draw(documents)
    new = list(old)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(["char", "insert_para", "delete_para", "move_sentence", "swap", "figure"])
        )
        if kind == "insert_para" or not new:
            new.insert(draw(st.integers(0, len(new))), draw(paragraphs))
            continue
        i = draw(st.integers(0, len(new) - 1))
        if kind == "char" and new[i]:
            k = draw(st.integers(0, len(new[i]) - 1))
            new[i] = new[i][:k] + draw(st.text(alphabet=ALPHABET, max_size=3)) + new[i][k + 1 :]
        elif kind == "figure":
            new[i] = re.sub(r"\d+", lambda m: str(int(m.group()) + 1), new[i], count=1) + draw(
                st.sampled_from(["", "35个"])
            )
        elif kind == "delete_para":
            del new[i]
        elif kind == "move_sentence":
            parts = split_sentences(new[i])
            if parts:
                s = parts.pop(draw(st.integers(0, len(parts) - 1)))
                new[i] = "".join(parts)
                j = draw(st.integers(0, len(new) - 1))
                new[j] = new[j] + s
        elif kind == "swap":
            j = draw(st.integers(0, len(new) - 1))
            new[i], new[j] = new[j], new[i]
    return old, new


pairs = st.one_of(edited(), st.tuples(documents, documents))


def apply_spans(old: str, spans: tuple[Span, ...]) -> str:
    out = []
    pos = 0
    for s in spans:
        out.append(old[pos : s.old_start])
        out.append(s.new_text)
        pos = s.old_end
    out.append(old[pos:])
    return "".join(out)


def check_spans(old: str, new: str, spans: tuple[Span, ...]) -> None:
    last_old = last_new = 0
    for s in spans:
        assert s.op in {"replace", "delete", "insert"}
        assert last_old <= s.old_start <= s.old_end <= len(old)
        assert last_new <= s.new_start <= s.new_end <= len(new)
        # unchanged stretch between spans is the same on both sides
        assert old[last_old : s.old_start] == new[last_new : s.new_start]
        assert s.old_text == old[s.old_start : s.old_end]
        assert s.new_text == new[s.new_start : s.new_end]
        assert (s.op == "insert") == (s.old_start == s.old_end)
        assert (s.op == "delete") == (s.new_start == s.new_end)
        last_old, last_new = s.old_end, s.new_end
    assert old[last_old:] == new[last_new:]
    assert apply_spans(old, spans) == new


def check_blocks(d: DocumentDiff) -> None:
    for b in d.blocks:
        assert b.op in {"equal", "insert", "delete", "replace", "move"}
        if b.op == "equal":
            assert b.old == b.new and b.spans == ()
        elif b.op == "insert":
            assert b.old is None and b.new and b.spans == ()
        elif b.op == "delete":
            assert b.new is None and b.old and b.spans == ()
        elif b.op == "replace":
            assert b.old != b.new and b.spans
            check_spans(b.old, b.new, b.spans)
        else:
            assert (b.spans == ()) == (b.old == b.new)
            check_spans(b.old, b.new, b.spans)
    new_order = [b.new_index for b in d.blocks if b.new is not None]
    assert new_order == sorted(set(new_order))


@SETTINGS
@given(pairs)
def test_diff_rebuilds_new_text_and_checks_old(pair):
    old, new = pair
    d = diff_texts(old, new)
    assert apply_diff(old, d) == "\n".join(p for p in new if p)
    check_blocks(d)
    if [p for p in old if p] != [p for p in new if p]:
        with pytest.raises(ValueError):
            apply_diff(new, d)


@SETTINGS
@given(pairs)
def test_significance_is_zero_iff_no_change(pair):
    old, new = pair
    d = diff_texts(old, new)
    if d.changes:
        assert 0.0 < d.significance <= 1.0
    else:
        assert d.significance == 0.0
        assert "".join(old) == "".join(new)
    if [p for p in old if p] == [p for p in new if p]:
        assert d.changes == ()


@SETTINGS
@given(documents)
def test_identical_documents_have_no_changes(doc):
    d = diff_texts(doc, list(doc))
    assert d.changes == () and d.significance == 0.0
    assert d.to_json("a", "b")["changes"] == []


@SETTINGS
@given(texts, texts)
def test_diff_sentences_spans_rebuild_new(a, b):
    spans = diff_sentences(a, b)
    check_spans(a, b, spans)
    assert (spans == ()) == (a == b)


@SETTINGS
@given(st.text(alphabet=ALPHABET + CLOSERS + "\n", max_size=80))
def test_split_sentences_round_trip(p):
    parts = split_sentences(p)
    assert "".join(parts) == p
    assert all(parts)
    for s in parts[:-1]:
        # every sentence but the last ends in a terminator (+ closers/whitespace)
        assert s.rstrip().rstrip(CLOSERS)[-1] in TERMINATORS
    for s in parts:
        body = s.rstrip().rstrip(CLOSERS).rstrip(TERMINATORS)
        assert not any(c in TERMINATORS for c in body)


@SETTINGS
@given(st.text(alphabet=ALPHABET + "\n", max_size=80))
def test_tokenize_round_trip(t):
    tokens = tokenize(t)
    assert "".join(tokens) == t
    for tok in tokens:
        assert len(tok) == 1 or re.fullmatch(r"[0-9A-Za-z]+(?:[.,%][0-9A-Za-z]+)*", tok)
    # a run of ASCII digits is never cut in two
    for left, right in itertools.pairwise(tokens):
        assert not (left[-1].isascii() and left[-1].isdigit() and right[0].isascii() and right[0].isdigit())
