"""policydiff on very large documents: the work is bounded (counted, never timed), the fast path
(anchored alignment) rebuilds the texts, and on documents of normal size it gives what difflib gives.

Work is counted by swapping the module's difflib ``SequenceMatcher`` for one that counts the (i, j)
probes of its longest-match search (what makes difflib quadratic on repeated items) and rapidfuzz's
``process`` for one that counts the sentence pairs scored. The counts stop the diff with
``WorkExceeded`` once over budget, so that a regression fails at once instead of running for minutes.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from difflib import SequenceMatcher
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process

import policywatch.policydiff.diff as D
from benchmarks.diff_scale import corpus_paragraphs_normalised, document, edited
from policywatch.demosite.pages import corpus_paragraphs
from policywatch.extraction import normalise_text
from policywatch.policydiff import DocumentDiff, apply_diff, diff_sentences, diff_texts, split_sentences
from tests.test_diff_properties import check_blocks, check_spans, pairs, texts

SIZE = 30_000  # sentences
#: Work allowed per sentence of the old document: difflib probes, sentence pairs scored.
PROBES_PER_SENTENCE = 20
COMPARISONS_PER_SENTENCE = 20


class WorkExceeded(AssertionError):
    pass


class Work:
    def __init__(self, budget_probes: int, budget_comparisons: int) -> None:
        self.probes = 0
        self.comparisons = 0
        self.budget_probes = budget_probes
        self.budget_comparisons = budget_comparisons

    def add(self, probes: int = 0, comparisons: int = 0) -> None:
        self.probes += probes
        self.comparisons += comparisons
        if self.probes > self.budget_probes:
            raise WorkExceeded(f"difflib probes over budget: {self.probes} > {self.budget_probes}")
        if self.comparisons > self.budget_comparisons:
            raise WorkExceeded(
                f"rapidfuzz comparisons over budget: {self.comparisons} > {self.budget_comparisons}"
            )


@contextmanager
def counted(budget_probes: int = 10**12, budget_comparisons: int = 10**12) -> Iterator[Work]:
    work = Work(budget_probes, budget_comparisons)

    class CountingMatcher(SequenceMatcher):
        def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):  # type: ignore[no-untyped-def]
            ahi = len(self.a) if ahi is None else ahi
            bhi = len(self.b) if bhi is None else bhi
            # difflib walks b2j[a[i]] (ascending) for every i, up to bhi
            work.add(
                probes=sum(bisect.bisect_left(self.b2j.get(self.a[i], ()), bhi) for i in range(alo, ahi))
            )
            return super().find_longest_match(alo, ahi, blo, bhi)

    class CountingFuzz:
        @staticmethod
        def ratio(a: str, b: str, **kwargs: Any) -> float:
            work.add(comparisons=1)
            return fuzz.ratio(a, b, **kwargs)

    class CountingProcess:
        @staticmethod
        def extract(query: str, choices: Any, *, scorer: Any, **kwargs: Any) -> Any:
            choices = list(choices)
            work.add(comparisons=len(choices))
            return process.extract(
                query, choices, scorer=fuzz.ratio if scorer is CountingFuzz.ratio else scorer, **kwargs
            )

    with (
        mock.patch.object(D, "SequenceMatcher", CountingMatcher),
        mock.patch.object(D, "fuzz", CountingFuzz),
        mock.patch.object(D, "process", CountingProcess),
    ):
        yield work


@contextmanager
def forced_fast_path(**small: Any) -> Iterator[None]:
    """Anchored alignment for every input, whatever its size (and other limits as given)."""
    with mock.patch.multiple(D, FAST_ALIGN_ITEMS=0, FAST_ALIGN_PAIRS=0, **small):
        yield


def rebuilds(old: list[str], new: list[str], d: DocumentDiff) -> None:
    assert apply_diff(old, d) == "\n".join(p for p in new if p)
    check_blocks(d)


# --------------------------------------------------------------------------------------------------
# (a) work bounds on 30,000 sentences


def one_paragraph_register(size: int) -> tuple[list[str], list[str]]:
    """The register's cells as the sentences of a single paragraph."""
    old = document("register", size)
    new = edited(old, 0.1)
    return [";".join(old)], [";".join(new)]


def long_sentence(size: int) -> tuple[list[str], list[str]]:
    """One sentence of `size` characters of policy text (terminators made commas), 1% of them changed."""
    text = "".join(corpus_paragraphs_normalised())
    while len(text) < size:
        text += text
    text = text[:size].translate(str.maketrans(dict.fromkeys("。！？；!?;", ",")))
    rng = random.Random(3)
    chars = list(text)
    for i in rng.sample(range(size), size // 100):
        chars[i] = rng.choice("数据要素")
    return [text], ["".join(chars)]


CASES = {
    "register": lambda n: (document("register", n), edited(document("register", n), 0.1)),
    "register, 1% edited": lambda n: (document("register", n), edited(document("register", n), 0.01)),
    "repeated corpus": lambda n: (document("repeated", n), edited(document("repeated", n), 0.1)),
    "numbered corpus": lambda n: (document("text", n), edited(document("text", n), 0.1)),
    "register in one paragraph": one_paragraph_register,
    "one long sentence": long_sentence,
}


@pytest.mark.parametrize("case", list(CASES))
def test_work_is_linear_in_the_document(case):
    """30,000 sentences (the long sentence: characters), 10% or 1% of them edited: difflib probes and
    rapidfuzz comparisons stay under 20 per sentence. (Before the anchored alignment: the register ~171 million probes, growing with
    the square of its length, in one paragraph too; the repeated corpus ~1.6 million; the sentence
    of 30,000 characters ~42 million.)"""
    old, new = CASES[case](SIZE)
    with counted(PROBES_PER_SENTENCE * SIZE, COMPARISONS_PER_SENTENCE * SIZE) as work:
        d = diff_texts(old, new)
    assert d.changes
    assert work.probes <= PROBES_PER_SENTENCE * SIZE
    assert work.comparisons <= COMPARISONS_PER_SENTENCE * SIZE
    rebuilds(old, new, d)


def test_work_grows_linearly_with_the_register():
    """Doubling the register at most doubles the work (plus a little): it used to quadruple."""
    counts = []
    for size in (SIZE // 2, SIZE):
        old = document("register", size)
        new = edited(old, 0.1)
        with counted(PROBES_PER_SENTENCE * size, COMPARISONS_PER_SENTENCE * size) as work:
            diff_texts(old, new)
        counts.append(work.probes + work.comparisons)
    assert counts[1] <= 2.5 * counts[0] + 1000


def test_moves_in_a_large_document_are_found_from_candidates():
    """Above MOVE_PAIRING_LIMIT deleted x inserted sentences, near-identical moves are still found
    (from the bigram index, a few candidates per sentence) where they used to be given up."""
    old = document("text", SIZE)
    sentences = [split_sentences(p) for p in old]
    rng = random.Random(5)
    moved = []
    for _ in range(600):  # rewrite 600 sentences completely (delete + insert), move 100 with an edit
        p = rng.randrange(len(sentences))
        k = rng.randrange(len(sentences[p]))
        sentences[p][k] = f"各地区要在{rng.randrange(10**6)}个月内完成第{rng.randrange(10**6)}批登记工作。"
    for _ in range(100):
        p = rng.randrange(len(sentences))
        s = sentences[p].pop(rng.randrange(len(sentences[p])))
        if len(s) < 30 or s.startswith("各地区要在"):
            sentences[p].append(s)
            continue
        s = s[:10] + "数" + s[11:]
        q = rng.randrange(len(sentences))
        sentences[q].insert(0, s)
        moved.append(s)
    new = [t for t in ("".join(parts) for parts in sentences) if t]
    with counted(budget_comparisons=COMPARISONS_PER_SENTENCE * SIZE) as work:
        d = diff_texts(old, new)
    kinds = Counter(b.op for b in d.changes)
    assert kinds["delete"] + kinds["insert"] > 1000  # enough leftovers to exceed MOVE_PAIRING_LIMIT
    found = {b.new for b in d.changes if b.op == "move" and b.spans}
    assert len(found & set(moved)) >= 0.9 * len(moved)
    assert work.comparisons <= COMPARISONS_PER_SENTENCE * SIZE
    rebuilds(old, new, d)


# --------------------------------------------------------------------------------------------------
# (b) the fast path rebuilds the texts


@pytest.mark.parametrize("shape", ["register", "text", "repeated"])
@pytest.mark.parametrize("fraction", [0.1, 0.01])
def test_fast_path_rebuilds_large_documents(shape, fraction):
    old = document(shape, SIZE)
    new = edited(old, fraction)
    with mock.patch.object(D, "_anchored_blocks", wraps=D._anchored_blocks) as anchored:
        d = diff_texts(old, new)
    assert anchored.called
    rebuilds(old, new, d)
    with pytest.raises(ValueError):
        apply_diff(new, d)


def test_fast_path_finds_the_edits_of_a_repeated_text():
    """A text repeated many times (every paragraph a duplicate) with a few sentences edited: the
    edited sentences are the changes, not thousands of moves (difflib matches repeated paragraphs
    across copies)."""
    old = document("repeated", SIZE)
    sentences = [split_sentences(p) for p in old]
    rng = random.Random(9)
    edits = 0
    for p in rng.sample(range(len(sentences)), 50):
        k = rng.randrange(len(sentences[p]))
        sentences[p][k] = sentences[p][k][:-1] + "数" + sentences[p][k][-1:]
        edits += 1
    new = ["".join(parts) for parts in sentences]
    d = diff_texts(old, new)
    assert [b.op for b in d.changes] == ["replace"] * edits
    rebuilds(old, new, d)


SMALLEST = {
    "GAP_AREA": 0,
    "WINDOW": 4,
    "LONG_PAIR": 0,
    "MOVE_PAIRING_LIMIT": 0,
    "ANCHOR_GRAMS": (2, 3),
}
sentence = st.sampled_from(["甲。", "乙。", "丙丁。", "数字经济。", "甲乙。", "35个。", "第2条。"])
repetitive_documents = st.lists(st.lists(sentence, max_size=12).map("".join), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.one_of(pairs, st.tuples(repetitive_documents, repetitive_documents)), st.sampled_from([0, 2, 6]))
def test_forced_fast_path_rebuilds_new_text(pair, gap):
    """Every part of the fast path on small inputs: anchors only (no difflib gaps), windows, k-gram
    anchors, long-pair scores, candidate moves."""
    old, new = pair
    with forced_fast_path(**{**SMALLEST, "GAP_AREA": gap}):
        d = diff_texts(old, new)
    rebuilds(old, new, d)
    if [p for p in old if p] != [p for p in new if p]:
        assert d.changes
        with pytest.raises(ValueError):
            apply_diff(new, d)
    else:
        assert d.changes == ()


@settings(max_examples=300, deadline=None)
@given(texts, texts)
def test_forced_fast_path_sentence_spans(a, b):
    with forced_fast_path(**SMALLEST):
        spans = diff_sentences(a, b)
    check_spans(a, b, spans)
    assert (spans == ()) == (a == b)


# --------------------------------------------------------------------------------------------------
# same result as difflib on documents of normal size


def _corpus() -> list[list[str]]:
    return [
        [p for p in (normalise_text(p) for p in corpus_paragraphs(n)) if p]
        for n in ("000", "001", "003", "004")
    ]


CORPUS = _corpus()


@st.composite
def realistic_edit(draw, duplicates: bool = False):
    """A corpus document and a few sentence edits of it: inserted, deleted, replaced (a new sentence
    or a changed character or figure), moved sentences, an inserted or deleted paragraph. With
    `duplicates`, inserted sentences may be copies of the document's own."""
    doc = draw(st.sampled_from(CORPUS))
    sentences = [split_sentences(p) for p in doc]
    pool = [s for parts in sentences for s in parts]
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "char", "figure", "move", "paragraph"]))
        p = draw(st.integers(0, len(sentences) - 1))
        if not sentences[p]:
            continue
        k = draw(st.integers(0, len(sentences[p]) - 1))
        fresh = (
            f"各地区要在{draw(st.integers(2, 99))}个月内完成第{draw(st.integers(1, 10**6))}批数据登记工作。"
        )
        if duplicates and draw(st.booleans()):
            fresh = draw(st.sampled_from(pool))
        s = sentences[p][k]
        if kind == "insert":
            sentences[p].insert(k, fresh)
        elif kind == "delete":
            del sentences[p][k]
        elif kind == "replace":
            sentences[p][k] = fresh
        elif kind == "char":
            i = draw(st.integers(0, max(0, len(s) - 2)))
            sentences[p][k] = s[:i] + draw(st.sampled_from("数据要素的")) + s[i + 1 :]
        elif kind == "figure":
            sentences[p][k] = s[:-1] + f"{draw(st.integers(1, 99))}个" + s[-1:]
        elif kind == "move":
            del sentences[p][k]
            q = draw(st.integers(0, len(sentences) - 1))
            sentences[q].insert(draw(st.integers(0, len(sentences[q]))), s)
        elif draw(st.booleans()):
            sentences.insert(p, [fresh])
        else:
            del sentences[p]
    return doc, ["".join(parts) for parts in sentences]


@settings(max_examples=200, deadline=None)
@given(realistic_edit(), st.sampled_from([0, 16, None]))
def test_fast_path_equals_difflib_on_realistic_edits(pair, gap):
    """Forced onto a corpus document (80-300 sentences), the anchored alignment gives exactly the
    diff of the difflib path, even with no difflib gaps at all (GAP_AREA=0; None: the default)."""
    old, new = pair
    expected = diff_texts(old, new)
    with forced_fast_path(**({} if gap is None else {"GAP_AREA": gap})):
        assert diff_texts(old, new) == expected


def change_set(d: DocumentDiff) -> Counter[tuple[Any, ...]]:
    return Counter((b.op, b.old, b.new, b.spans) for b in d.changes)


@settings(max_examples=200, deadline=None)
@given(realistic_edit(duplicates=True), st.sampled_from([0, None]))
def test_fast_path_equivalent_with_duplicated_sentences(pair, gap):
    """With inserted copies of the document's own sentences, the fast path may call the other copy
    the inserted one (when two copies stand side by side): the same change set and significance."""
    old, new = pair
    expected = diff_texts(old, new)
    with forced_fast_path(**({} if gap is None else {"GAP_AREA": gap})):
        d = diff_texts(old, new)
    assert change_set(d) == change_set(expected)
    assert d.significance == expected.significance
    rebuilds(old, new, d)


def test_normal_documents_stay_on_difflib():
    """The corpus documents, and the 60,000-character test document, are far below the threshold."""
    doc = [p for text in CORPUS for p in text]
    while sum(map(len, doc)) < 60_000:
        doc += doc
    new = list(doc)
    new.insert(5, "新增一段。")
    with mock.patch.object(D, "_anchored_blocks", wraps=D._anchored_blocks) as anchored:
        diff_texts(doc, new)
    assert not anchored.called


# --------------------------------------------------------------------------------------------------
# helpers rewritten for large inputs: same results as before


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=12, unique_by=lambda p: p[0]))
def test_lis_first_is_the_longest_chain_earliest_in_a(raw):
    pairs_ = sorted({i: j for i, j in raw}.items())
    pairs_ = [(i, j) for i, j in pairs_ if j not in {jj for ii, jj in pairs_ if ii < i}]  # distinct j
    chain = D._lis_first(pairs_)
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(chain))
    best: list[tuple[int, int]] = []
    for mask in range(1 << len(pairs_)):  # brute force: longest, then lexicographically smallest i
        pick = [p for k, p in enumerate(pairs_) if mask >> k & 1]
        if all(a[1] < b[1] for a, b in itertools.pairwise(pick)) and (
            len(pick) > len(best) or (len(pick) == len(best) and [p[0] for p in pick] < [p[0] for p in best])
        ):
            best = pick
    assert chain == best


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 50), unique=True, max_size=10).map(sorted),
    st.lists(st.integers(-5, 55), max_size=14),
)
def test_nearest_takes_what_min_and_remove_took(positions, queries):
    nearest = D._Nearest(positions)
    free = list(range(len(positions)))
    for x in queries:
        expected = min(free, key=lambda k: abs(positions[k] - x)) if free else None
        if expected is not None:
            free.remove(expected)
        assert nearest.take(x) == expected


def _merge_short_equalities_reference(ops: list[list[Any]], old: str) -> list[list[Any]]:
    """The earlier in-place version (quadratic on sentences with thousands of spans)."""
    k = 1
    while k < len(ops) - 1:
        tag, a1, a2, _, _ = ops[k]
        left, right = ops[k - 1], ops[k + 1]
        if tag == "equal" and left[0] != "equal" and right[0] != "equal":
            lsize = max(left[2] - left[1], left[4] - left[3])
            rsize = max(right[2] - right[1], right[4] - right[3])
            if (a2 - a1) * 2 < min(lsize, rsize) and not any(c.isdigit() for c in old[a1:a2]):
                ops[k - 1 : k + 2] = [["replace", left[1], right[2], left[3], right[4]]]
                k = max(1, k - 1)
                continue
        k += 1
    return ops


@settings(max_examples=500, deadline=None)
@given(texts, texts)
def test_merge_short_equalities_as_before(a, b):
    ops = [list(op) for op in SequenceMatcher(None, a, b, autojunk=False).get_opcodes()]
    assert D._merge_short_equalities([list(op) for op in ops], a) == _merge_short_equalities_reference(
        [list(op) for op in ops], a
    )
