"""Diff two versions of a policy text given as lists of normalised paragraphs.

(About 960 lines in one module, half of them the algorithm's explanation and its runnable examples:
the five steps below feed each other's data structures and are tested as one function,
tests/test_diff*.py and tests/test_doctests.py; the text utilities are text.py, the renderings render.py.)

Algorithm
---------
1. Paragraphs: the common leading/trailing paragraphs are skipped, the rest is aligned with
   ``difflib.SequenceMatcher(autojunk=False)`` on whole paragraph strings. Equal paragraphs become one
   ``equal`` block each and are never split into characters.
2. Every non-equal paragraph region is split into sentences (:func:`split_sentences`) and the sentences
   are aligned with difflib. Inside a sentence-level ``replace`` region, old and new sentences are paired
   by ``rapidfuzz.fuzz.ratio >= PAIR_THRESHOLD`` along an order-preserving chain of maximum total score;
   a pair becomes a ``replace`` block with character spans.
3. All sentences left over (deleted or inserted anywhere in the document, or not paired in step 2) are
   matched across the whole document: an identical sentence deleted in one place and inserted in another
   is a ``move`` without spans, a near-identical one (ratio >= threshold) a ``move`` with spans. What is
   still unpaired is a ``delete`` / ``insert`` block (consecutive sentences of one paragraph are merged
   into one block).
4. Character spans inside a pair (:func:`diff_sentences`) come from difflib over :func:`tokenize` tokens,
   so a number is replaced as a whole ("35"->"50", "8354"->"8355"); an equal stretch that is short
   compared to the changes on both sides of it (and holds no digit) is folded into one replace span.

The work is proportional to the changed region: equal paragraphs are only hashed, compared and counted
(for sentence indices), never diffed character by character.

Large inputs
------------
difflib's longest-match search looks at every pair of equal items in its range, so on repeated items
(a register's 是/否 and city cells, a text repeated on one page, the characters of one very long
sentence) its work grows with the square of the input. Every alignment above (paragraphs, sentences,
tokens) therefore switches to an anchored alignment (:func:`_anchored_blocks`) when it has more than
FAST_ALIGN_ITEMS items or more than FAST_ALIGN_PAIRS pairs of equal items; below that, nothing changes.
The anchored alignment cuts the input at anchors (items unique on both sides, as in patience diff,
chained by a longest increasing subsequence; failing those, equally frequent items or unique runs of
items), recursively, and leaves difflib only gaps of at most GAP_AREA old x new items; a gap without
anchors is aligned by difflib in sliding windows of WINDOW items. On documents without duplicates it
gives difflib's result (tests/test_diff_scale.py forces it onto corpus documents). Near-identical moves
are scored in full up to MOVE_PAIRING_LIMIT pairs, above it for the MOVE_CANDIDATES inserted sentences
sharing most rare bigrams with a deleted one; a pair of sentences longer than LONG_PAIR characters
together is scored from its alignment rather than by rapidfuzz (whose cost is the product of the
lengths). All in all the difflib and rapidfuzz work is linear in the size of the input.

Significance
------------
Each changed character gets a weight ``w(c)``: ``5`` for a digit (a changed figure matters most),
``0.5`` for a particle (的了地得着过之而及与和或等也), ``0.25`` for punctuation, symbols and whitespace,
``1`` for anything else. The changed weight ``W`` of the diff is the sum over change blocks of

* ``insert`` / ``delete``: the weight of the whole inserted / deleted text;
* ``replace``: for each span, ``max(w(span old text), w(span new text))``;
* ``move``: ``0.1 * len(sentence)`` plus the span weights as for ``replace``.

With ``N = max(len(old text), len(new text))`` characters (paragraphs concatenated)::

    share        = min(1, W / N)                       # share of the document that changed
    significance = 1 - (1 - share) * exp(-W / 40)

i.e. the share of changed characters, raised by a term that saturates with the absolute size of the
change (so that a changed figure in a long document still counts: "35"->"50" gives W=10, ~0.22; one
changed Han character ~0.025; one changed comma ~0.006; an added 100-character paragraph ~0.92).
It is 0.0 iff there is no change block and lies in (0, 1] otherwise.
"""

from __future__ import annotations

import math
import unicodedata
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, cast

from rapidfuzz import fuzz, process

from .text import count_sentences, split_sentences, tokenize

__all__ = [
    "Block",
    "DocumentDiff",
    "Span",
    "apply_diff",
    "diff_sentences",
    "diff_texts",
    "significance_of",
]

#: Minimum rapidfuzz ``fuzz.ratio`` for two sentences to be one modified sentence.
PAIR_THRESHOLD = 60.0
#: Sentence-level replace regions up to this many old x new sentences are scored in full;
#: bigger ones only near the diagonal (+-PAIR_BAND sentences).
FULL_PAIRING_LIMIT = 40_000
PAIR_BAND = 25
#: Up to this many leftover deletes x inserts, every pair is scored for near-identical moves; above
#: it only candidates from the bigram index are (at most MOVE_CANDIDATES per deleted sentence).
MOVE_PAIRING_LIMIT = 250_000
MOVE_CANDIDATES = 8
#: Bigrams held by more than this many inserted sentences are too common to propose candidates.
MOVE_BIGRAM_DF = 48

#: Sentence pairs longer than this (characters, together) are scored from their alignment.
LONG_PAIR = 20_000

#: Alignment switches from difflib to anchored alignment (:func:`_anchored_blocks`) above this many
#: items (paragraphs, sentences or tokens, after the common head and tail) on both sides together,
#: or above this many pairs of equal items (duplicates make difflib quadratic).
FAST_ALIGN_ITEMS = 6_000
FAST_ALIGN_PAIRS = 300_000
#: Anchored alignment: a region of at most this many old x new items is aligned with difflib.
GAP_AREA = 40_000
#: Anchored alignment: items occurring up to this many times, as often on both sides, anchor a region
#: that holds no item unique on both sides (the k-th occurrence pairs with the k-th).
OCCURRENCE_CAP = 64
#: Anchored alignment: runs of this many items anchor a region whose single items do not.
ANCHOR_GRAMS = (4, 16)
#: Anchored alignment: the anchor searches look at most at this many items per item aligned.
ANCHOR_BUDGET = 40
#: Anchored alignment: a region with no anchors is aligned with difflib in windows of this many items.
WINDOW = 64

DIGIT_WEIGHT = 5.0
PARTICLE_WEIGHT = 0.5
PUNCT_WEIGHT = 0.25
MOVE_WEIGHT = 0.1
SATURATION = 40.0
PARTICLES = frozenset("的了地得着过之而及与和或等也")


# --------------------------------------------------------------------------------------------------
# data model


@dataclass(frozen=True, slots=True)
class Span:
    """A changed part inside a sentence pair; offsets are into ``Block.old`` / ``Block.new``.

    >>> [span] = diff_sentences("第一条 数据要素。", "第一条 数据要素市场。")
    >>> span.to_json()
    {'op': 'insert', 'old': [8, 8], 'new': [8, 10], 'old_text': '', 'new_text': '市场'}
    """

    op: str  # "replace" | "delete" | "insert"
    old_start: int
    old_end: int
    new_start: int
    new_end: int
    old_text: str = ""
    new_text: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "old": [self.old_start, self.old_end],
            "new": [self.new_start, self.new_end],
            "old_text": self.old_text,
            "new_text": self.new_text,
        }


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of the diff: a sentence (or merged run of sentences, or a whole equal paragraph).

    ``old_index`` / ``new_index`` are sentence positions in the old / new document (for a multi-sentence
    block: of its first sentence); ``old_paragraph`` / ``new_paragraph`` the index of the (non-empty)
    paragraph the block belongs to.

    >>> diff = diff_texts(["第一条 数据要素。", "第二条 附则。"], ["第二条 附则。", "第一条 数据要素市场。"])
    >>> [block.op for block in diff.blocks]
    ['equal', 'move']
    >>> moved = diff.blocks[1]
    >>> (moved.old, moved.new, moved.old_paragraph, moved.new_paragraph)
    ('第一条 数据要素。', '第一条 数据要素市场。', 0, 1)
    >>> moved.to_json()["spans"][0]["new_text"]
    '市场'
    """

    op: str  # "equal" | "insert" | "delete" | "replace" | "move"
    old: str | None
    new: str | None
    spans: tuple[Span, ...] = ()
    old_index: int | None = None
    new_index: int | None = None
    old_paragraph: int | None = None
    new_paragraph: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "old": self.old,
            "new": self.new,
            "spans": [s.to_json() for s in self.spans],
            "old_index": self.old_index,
            "new_index": self.new_index,
            "old_paragraph": self.old_paragraph,
            "new_paragraph": self.new_paragraph,
        }


@dataclass(frozen=True, slots=True)
class DocumentDiff:
    """The blocks of a diff in the new text's reading order, and its significance (module docstring).

    >>> diff = diff_texts(["第一条 数据要素。第二条 附则。"], ["第一条 数据要素市场。第二条 附则。"])
    >>> [block.op for block in diff.blocks], [block.op for block in diff.changes]
    (['replace', 'equal'], ['replace'])
    >>> data = diff.to_json(41, 42)
    >>> data["old_version_id"], data["new_version_id"], [c["new"] for c in data["changes"]]
    (41, 42, ['第一条 数据要素市场。'])
    """

    blocks: tuple[Block, ...]  # reading order of the new text, "equal" blocks included
    significance: float

    @property
    def changes(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.op != "equal")

    def to_json(self, old_version_id: Any, new_version_id: Any) -> dict[str, Any]:
        return {
            "old_version_id": old_version_id,
            "new_version_id": new_version_id,
            "significance": self.significance,
            "changes": [b.to_json() for b in self.changes],
        }


# --------------------------------------------------------------------------------------------------
# alignment: difflib, or anchored alignment for big inputs

_Opcode = tuple[str, int, int, int, int]


def _equal_pairs(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Number of (i, j) with ``a[i] == b[j]``: what one difflib longest-match search looks at."""
    cb = Counter(b)
    return sum(cnt * cb[x] for x, cnt in Counter(a).items() if x in cb)


def _use_anchored(a: Sequence[Hashable], b: Sequence[Hashable]) -> bool:
    """True when difflib would be slow on ``a`` x ``b``: many items, or many duplicates."""
    n, m = len(a), len(b)
    if n + m > FAST_ALIGN_ITEMS:
        return True
    if n * m <= FAST_ALIGN_PAIRS:
        return False
    return _equal_pairs(a, b) > FAST_ALIGN_PAIRS


def _difflib_blocks(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int, int]]:
    sm = SequenceMatcher(None, a, b, autojunk=False)
    return [(i, j, k) for i, j, k in sm.get_matching_blocks() if k]


def _opcodes_of_blocks(blocks: list[tuple[int, int, int]], n: int, m: int) -> list[_Opcode]:
    """difflib's ``get_opcodes`` for matching blocks (increasing in both sequences) of an n x m pair."""
    ops: list[_Opcode] = []
    i = j = 0
    for ai, bj, size in [*blocks, (n, m, 0)]:
        if i < ai and j < bj:
            ops.append(("replace", i, ai, j, bj))
        elif i < ai:
            ops.append(("delete", i, ai, j, bj))
        elif j < bj:
            ops.append(("insert", i, ai, j, bj))
        i, j = ai + size, bj + size
        if size:
            ops.append(("equal", ai, i, bj, j))
    return ops


def _align(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[_Opcode]:
    """Opcodes turning ``a`` into ``b``: difflib's, or anchored alignment's when difflib would be slow."""
    if _use_anchored(a, b):
        return _opcodes_of_blocks(_anchored_blocks(a, b), len(a), len(b))
    return cast(list[_Opcode], SequenceMatcher(None, a, b, autojunk=False).get_opcodes())


def _lis_first(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest chain of ``pairs`` (sorted by i, distinct i and j) strictly increasing in j; of several,
    the one with the earliest i (as difflib, which keeps the earliest of equally long matches)."""
    # longest[k]: length of the longest increasing chain starting at pairs[k] (scan from the right,
    # patience sorting on -j).
    longest = [0] * len(pairs)
    tails: list[int] = []  # tails[l]: the smallest -j that starts a chain of l + 1 pairs scanned so far
    for k in range(len(pairs) - 1, -1, -1):
        key = -pairs[k][1]
        pos = bisect_left(tails, key)
        if pos == len(tails):
            tails.append(key)
        else:
            tails[pos] = key
        longest[k] = pos + 1
    need = len(tails)
    last_j = -1
    chain: list[tuple[int, int]] = []
    for k, (i, j) in enumerate(pairs):
        if need and longest[k] == need and j > last_j:
            chain.append((i, j))
            last_j = j
            need -= 1
    return chain


def _unique_pairs(ka: Sequence[Hashable], kb: Sequence[Hashable]) -> list[tuple[int, int]]:
    """(i, j) for every key unique in ``ka`` and in ``kb`` with ``ka[i] == kb[j]``, by i."""
    ca = Counter(ka)
    cb = Counter(kb)
    where = {x: j for j, x in enumerate(kb) if cb[x] == 1 and ca.get(x) == 1}
    return [(i, where[x]) for i, x in enumerate(ka) if x in where]


def _anchors(a: Sequence[Hashable], b: Sequence[Hashable]) -> tuple[list[tuple[int, int, int]], int]:
    """Anchor blocks (i, j, size) of ``a`` x ``b``, increasing on both sides, and the items looked at.

    In turn, until one gives anchors: the items unique on both sides (patience diff); the items that
    occur equally often on both sides (at most OCCURRENCE_CAP times), the k-th occurrence with the k-th;
    the runs of K items unique on both sides, for K in ANCHOR_GRAMS. Candidates are reduced to the
    longest chain increasing on both sides (:func:`_lis_first`).
    """
    n, m = len(a), len(b)
    work = n + m
    pairs = _unique_pairs(a, b)
    if not pairs:
        ca = Counter(a)
        cb = Counter(b)
        places: dict[Hashable, list[int]] = defaultdict(list)
        for j, x in enumerate(b):
            if cb[x] == ca.get(x) and cb[x] <= OCCURRENCE_CAP:
                places[x].append(j)
        seen: Counter[Hashable] = Counter()
        for i, x in enumerate(a):
            if x in places:
                pairs.append((i, places[x][seen[x]]))
                seen[x] += 1
    if pairs:
        return [(i, j, 1) for i, j in _lis_first(pairs)], work
    for size in ANCHOR_GRAMS:
        if n < size or m < size:
            break
        work += size * (n + m)
        grams_a = [tuple(a[i : i + size]) for i in range(n - size + 1)]
        grams_b = [tuple(b[j : j + size]) for j in range(m - size + 1)]
        blocks: list[tuple[int, int, int]] = []
        for i, j in _lis_first(_unique_pairs(grams_a, grams_b)):
            if blocks:
                bi, bj, bk = blocks[-1]
                if i - bi == j - bj and i <= bi + bk:  # overlaps the last block on its diagonal
                    blocks[-1] = (bi, bj, i + size - bi)
                    continue
                if i < bi + bk or j < bj + bk:  # overlaps it off its diagonal
                    continue
            blocks.append((i, j, size))
        if blocks:
            return blocks, work
    return [], work


def _windowed_blocks(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int, int]]:
    """Align ``a`` and ``b`` by difflib in WINDOW x WINDOW windows sliding down the diagonal: the
    matches in the first half of a window are kept and the next window starts after them."""
    half = max(2, WINDOW // 2)
    out: list[tuple[int, int, int]] = []
    i = j = 0
    n, m = len(a), len(b)
    while i < n and j < m:
        ie, je = min(n, i + WINDOW), min(m, j + WINDOW)
        blocks = _difflib_blocks(a[i:ie], b[j:je])
        if ie == n and je == m:
            out.extend((i + x, j + y, k) for x, y, k in blocks)
            break
        ni, nj = i, j
        for x, y, k in blocks:
            if x + k > half or y + k > half:
                break
            out.append((i + x, j + y, k))
            ni, nj = i + x + k, j + y + k
        if (ni - i) + (nj - j) < half // 2:  # too little kept: move on half a window on both sides
            ni, nj = min(ie, i + half), min(je, j + half)
        i, j = ni, nj
    return out


def _anchored_blocks(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int, int]]:
    """Matching blocks (i, j, size) of ``a`` and ``b``, difflib's on inputs without duplicates and with
    few changes, in O((n + m) log(n + m)) steps and O(n + m) difflib work whatever the inputs.

    A region (the whole of both sequences to begin with) loses its common head and tail; if what is
    left is at most GAP_AREA items old x new, difflib aligns it. Otherwise it is cut at its anchors
    (:func:`_anchors`) and every gap between two anchors is a region of its own (patience diff). The
    anchor searches together look at no more than ANCHOR_BUDGET x (n + m) items; a region left
    without anchors is aligned by difflib in sliding windows (:func:`_windowed_blocks`).
    """
    found: list[tuple[int, int, int]] = []
    budget = ANCHOR_BUDGET * (len(a) + len(b))
    regions = [(0, len(a), 0, len(b))]
    while regions:
        alo, ahi, blo, bhi = regions.pop()
        k = 0
        while alo + k < ahi and blo + k < bhi and a[alo + k] == b[blo + k]:
            k += 1
        if k:
            found.append((alo, blo, k))
            alo, blo = alo + k, blo + k
        k = 0
        while alo < ahi - k and blo < bhi - k and a[ahi - 1 - k] == b[bhi - 1 - k]:
            k += 1
        if k:
            ahi, bhi = ahi - k, bhi - k
            found.append((ahi, bhi, k))
        if alo == ahi or blo == bhi:
            continue
        if (ahi - alo) * (bhi - blo) <= GAP_AREA:
            found.extend((alo + x, blo + y, k) for x, y, k in _difflib_blocks(a[alo:ahi], b[blo:bhi]))
            continue
        anchors: list[tuple[int, int, int]] = []
        if budget > 0:
            anchors, work = _anchors(a[alo:ahi], b[blo:bhi])
            budget -= work
        if not anchors:
            found.extend((alo + x, blo + y, k) for x, y, k in _windowed_blocks(a[alo:ahi], b[blo:bhi]))
            continue
        i0, j0 = alo, blo
        for x, y, k in anchors:
            i, j = alo + x, blo + y
            found.append((i, j, k))
            regions.append((i0, i, j0, j))
            i0, j0 = i + k, j + k
        regions.append((i0, ahi, j0, bhi))
    found.sort()
    merged: list[tuple[int, int, int]] = []
    for i, j, k in found:
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + k)
        else:
            merged.append((i, j, k))
    return merged


# --------------------------------------------------------------------------------------------------
# sentence level


def diff_sentences(old: str, new: str) -> tuple[Span, ...]:
    """Character spans that turn ``old`` into ``new`` (token-level difflib, see module docstring).

    A number changes as a whole; equal sentences give no span.

    >>> diff_sentences("第一条 数据要素。", "第一条 数据要素市场。")
    (Span(op='insert', old_start=8, old_end=8, new_start=8, new_end=10, old_text='', new_text='市场'),)
    >>> [(s.old_text, s.new_text) for s in diff_sentences("增加值8354亿元，增长35%。", "增加值8355亿元，增长50%。")]
    [('8354', '8355'), ('35', '50')]
    >>> diff_sentences("第一条 数据要素。", "第一条 数据要素。")
    ()
    """
    if old == new:
        return ()
    ta, tb = tokenize(old), tokenize(new)
    lim = min(len(ta), len(tb))
    pre = 0
    while pre < lim and ta[pre] == tb[pre]:
        pre += 1
    suf = 0
    while suf < lim - pre and ta[-1 - suf] == tb[-1 - suf]:
        suf += 1
    oa = _offsets(ta)
    ob = _offsets(tb)
    ops: list[list[Any]] = [
        [tag, oa[pre + a1], oa[pre + a2], ob[pre + b1], ob[pre + b2]]
        for tag, a1, a2, b1, b2 in _align(ta[pre : len(ta) - suf], tb[pre : len(tb) - suf])
    ]
    ops = _merge_short_equalities(ops, old)
    spans = []
    for tag, a1, a2, b1, b2 in ops:
        if tag == "equal":
            continue
        op = "replace" if a1 < a2 and b1 < b2 else ("delete" if a1 < a2 else "insert")
        spans.append(Span(op, a1, a2, b1, b2, old[a1:a2], new[b1:b2]))
    return tuple(spans)


def _offsets(tokens: list[str]) -> list[int]:
    out = [0]
    acc = 0
    for t in tokens:
        acc += len(t)
        out.append(acc)
    return out


def _merge_short_equalities(ops: list[list[Any]], old: str) -> list[list[Any]]:
    """Fold an equal stretch into its neighbours when it is short next to the changes around it.

    Keeps "35个左右" -> "50个以上" as two spans but turns a sentence rewritten around a stray
    common 的 into one replace span. (Left to right: an equal stretch is weighed against the change
    before it, merged ones included, and the change after it.)
    """
    out: list[list[Any]] = []
    k = 0
    while k < len(ops):
        op = ops[k]
        if (
            op[0] == "equal"
            and out
            and out[-1][0] != "equal"
            and k + 1 < len(ops)
            and ops[k + 1][0] != "equal"
        ):
            left, right = out[-1], ops[k + 1]
            _, a1, a2, _, _ = op
            lsize = max(left[2] - left[1], left[4] - left[3])
            rsize = max(right[2] - right[1], right[4] - right[3])
            if (a2 - a1) * 2 < min(lsize, rsize) and not any(c.isdigit() for c in old[a1:a2]):
                out[-1] = ["replace", left[1], right[2], left[3], right[4]]
                k += 2
                continue
        out.append(op)
        k += 1
    return out


# --------------------------------------------------------------------------------------------------
# document level

# A sentence record: (text, global sentence index, paragraph index).
_Sent = tuple[str, int, int]


def _sentence_starts(paragraphs: list[str]) -> list[int]:
    starts = [0]
    acc = 0
    for p in paragraphs:
        acc += count_sentences(p)
        starts.append(acc)
    return starts


def _sentences(paragraphs: list[str], starts: list[int], p1: int, p2: int) -> list[_Sent]:
    out: list[_Sent] = []
    for p in range(p1, p2):
        g = starts[p]
        for k, s in enumerate(split_sentences(paragraphs[p])):
            out.append((s, g + k, p))
    return out


def _paragraph_opcodes(old: list[str], new: list[str]) -> list[tuple[str, int, int, int, int]]:
    n, m = len(old), len(new)
    pre = 0
    lim = min(n, m)
    while pre < lim and old[pre] == new[pre]:
        pre += 1
    suf = 0
    while suf < lim - pre and old[n - 1 - suf] == new[m - 1 - suf]:
        suf += 1
    ops: list[tuple[str, int, int, int, int]] = []
    if pre:
        ops.append(("equal", 0, pre, 0, pre))
    if pre < n - suf or pre < m - suf:
        for tag, i1, i2, j1, j2 in _align(old[pre : n - suf], new[pre : m - suf]):
            ops.append((tag, i1 + pre, i2 + pre, j1 + pre, j2 + pre))
    if suf:
        ops.append(("equal", n - suf, n, m - suf, m))
    return ops


def _best_chain(cands: list[tuple[int, int, float]], m: int) -> list[tuple[int, int]]:
    """Maximum-total-score chain of candidate pairs (i, j, score), strictly increasing in i and j."""
    if not cands:
        return []
    cands.sort(key=lambda c: (c[0], -c[1]))
    tree: list[tuple[float, int]] = [(0.0, -1)] * (m + 1)  # Fenwick tree of prefix maxima over j
    best: list[float] = []
    prev: list[int] = []
    for idx, (_, j, score) in enumerate(cands):
        q = (0.0, -1)
        k = j
        while k > 0:
            if tree[k][0] > q[0]:
                q = tree[k]
            k -= k & -k
        val = q[0] + score
        best.append(val)
        prev.append(q[1])
        k = j + 1
        while k <= m:
            if val > tree[k][0]:
                tree[k] = (val, idx)
            k += k & -k
    end = max(range(len(cands)), key=best.__getitem__)
    chain = []
    while end != -1:
        chain.append((cands[end][0], cands[end][1]))
        end = prev[end]
    chain.reverse()
    return chain


def _scores(query: str, choices: Sequence[str]) -> list[tuple[float, int]]:
    """(score, index) of the ``choices`` whose ``fuzz.ratio`` with ``query`` is >= PAIR_THRESHOLD.

    A pair longer than LONG_PAIR characters together is scored from its anchored alignment instead
    (the same formula over the characters it matches: a lower bound of the ratio), as rapidfuzz's
    ratio costs the product of the two lengths.
    """
    short = [k for k, c in enumerate(choices) if len(query) + len(c) <= LONG_PAIR]
    out: list[tuple[float, int]] = []
    if short:
        among = choices if len(short) == len(choices) else [choices[k] for k in short]
        for _, score, k in process.extract(
            query, among, scorer=fuzz.ratio, score_cutoff=PAIR_THRESHOLD, limit=None
        ):
            out.append((score, short[k]))
    if len(short) < len(choices):
        for k, c in enumerate(choices):
            total = len(query) + len(c)
            if total <= LONG_PAIR or 200 * min(len(query), len(c)) < PAIR_THRESHOLD * total:
                continue
            score = 200 * sum(size for _, _, size in _anchored_blocks(query, c)) / total
            if score >= PAIR_THRESHOLD:
                out.append((score, k))
    return out


def _align_pairs(olds: list[str], news: list[str]) -> list[tuple[int, int]]:
    """Order-preserving pairing of modified sentences inside one sentence-level replace region."""
    n, m = len(olds), len(news)
    cands: list[tuple[int, int, float]] = []
    banded = n * m > FULL_PAIRING_LIMIT
    for i, s in enumerate(olds):
        lo, hi = 0, m
        if banded:
            centre = i * m // n
            lo, hi = max(0, centre - PAIR_BAND), min(m, centre + PAIR_BAND + 1)
        for score, j in _scores(s, news[lo:hi]):
            cands.append((i, lo + j, score))
    return _best_chain(cands, m)


class _Nearest:
    """Positions (ascending) from which the nearest one to a point is taken, then no longer offered."""

    def __init__(self, positions: list[int]) -> None:
        self.positions = positions
        n = len(positions)
        self._right = list(range(n + 1))  # _right[p]: first free slot >= p (n: none)
        self._left = list(range(n + 1))  # _left[p + 1]: last free slot <= p, plus one (0: none)

    @staticmethod
    def _find(parent: list[int], p: int) -> int:
        root = p
        while parent[root] != root:
            root = parent[root]
        while parent[p] != root:
            parent[p], p = root, parent[p]
        return root

    def take(self, x: int) -> int | None:
        """Take the free slot whose position is nearest to ``x`` (the lower one on a tie)."""
        p = bisect_left(self.positions, x)
        right = self._find(self._right, p)
        left = self._find(self._left, p) - 1  # slots <= p - 1
        if left < 0 and right == len(self.positions):
            return None
        if right == len(self.positions) or (
            left >= 0 and x - self.positions[left] <= self.positions[right] - x
        ):
            slot = left
        else:
            slot = right
        self._right[slot] = slot + 1
        self._left[slot + 1] = slot
        return slot


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def _move_candidates(olds: list[str], news: list[str]) -> list[list[int]]:
    """For each of ``olds``, the (at most MOVE_CANDIDATES) ``news`` sharing the most bigrams with it,
    bigrams held by more than MOVE_BIGRAM_DF of ``news`` not counted."""
    index: dict[str, list[int]] = defaultdict(list)
    for jj, text in enumerate(news):
        for gram in _bigrams(text):
            index[gram].append(jj)
    out = []
    for text in olds:
        shared: Counter[int] = Counter()
        for gram in _bigrams(text):
            holders = index.get(gram)
            if holders and len(holders) <= MOVE_BIGRAM_DF:
                shared.update(holders)
        out.append([jj for jj, _ in shared.most_common(MOVE_CANDIDATES)])
    return out


def _pair_moves(left_old: list[tuple[_Sent, int]], left_new: list[_Sent]) -> list[tuple[int, int]]:
    """Pair leftover deleted and inserted sentences anywhere in the document (moves).

    An identical sentence pairs with the nearest (in sentence index) inserted one; then, near-identical
    sentences pair best score first: every deleted x inserted pair scored up to MOVE_PAIRING_LIMIT
    pairs, above it only the candidates of :func:`_move_candidates`.
    """
    pairs: list[tuple[int, int]] = []
    by_text: dict[str, list[int]] = defaultdict(list)
    for k, s in enumerate(left_new):  # left_new is in new-document order
        by_text[s[0]].append(k)
    nearest = {text: _Nearest([left_new[k][1] for k in ks]) for text, ks in by_text.items()}
    used_new: set[int] = set()
    rest_old: list[int] = []
    for k, (s, _) in enumerate(left_old):
        free = nearest.get(s[0])
        slot = free.take(s[1]) if free is not None else None
        if slot is not None:
            nk = by_text[s[0]][slot]
            pairs.append((k, nk))
            used_new.add(nk)
        else:
            rest_old.append(k)
    rest_new = [k for k in range(len(left_new)) if k not in used_new]
    if rest_old and rest_new:
        texts = [left_new[k][0] for k in rest_new]
        if len(rest_old) * len(rest_new) <= MOVE_PAIRING_LIMIT:
            choices: list[list[int]] | None = None
        else:
            choices = _move_candidates([left_old[k][0][0] for k in rest_old], texts)
        cands = []
        for r, k in enumerate(rest_old):
            s = left_old[k][0]
            among = texts if choices is None else [texts[jj] for jj in choices[r]]
            if not among:
                continue
            for score, jj in _scores(s[0], among):
                nk = rest_new[jj if choices is None else choices[r][jj]]
                cands.append((-score, abs(left_new[nk][1] - s[1]), k, nk))
        cands.sort()
        used_old: set[int] = set()
        for _, _, k, nk in cands:
            if k not in used_old and nk not in used_new:
                used_old.add(k)
                used_new.add(nk)
                pairs.append((k, nk))
    return pairs


def diff_texts(old: Sequence[str], new: Sequence[str]) -> DocumentDiff:
    """Diff two documents given as lists of normalised paragraphs (empty paragraphs are ignored).

    >>> old = ["第一条 数据要素。第二条 培育市场。", "第三条 附则。"]
    >>> new = ["第一条 数据要素市场。第二条 培育市场。", "", "第三条 附则。"]
    >>> diff = diff_texts(old, new)
    >>> [(b.op, b.new) for b in diff.blocks]
    [('replace', '第一条 数据要素市场。'), ('equal', '第二条 培育市场。'), ('equal', '第三条 附则。')]
    >>> diff.changes[0].spans[0].new_text
    '市场'
    >>> 0 < diff.significance < 1, diff_texts(old, old).significance
    (True, 0.0)
    """
    old_p = [p for p in old if p]
    new_p = [p for p in new if p]
    old_starts = _sentence_starts(old_p)
    new_starts = _sentence_starts(new_p)

    keyed: list[tuple[tuple[int, int, int], Block]] = []
    left_old: list[tuple[_Sent, int]] = []  # (sentence, new-side anchor for a delete block)
    left_new: list[_Sent] = []

    for tag, i1, i2, j1, j2 in _paragraph_opcodes(old_p, new_p):
        if tag == "equal":
            for k in range(i2 - i1):
                p = old_p[i1 + k]
                g_new = new_starts[j1 + k]
                keyed.append(
                    ((g_new, 1, 0), Block("equal", p, p, (), old_starts[i1 + k], g_new, i1 + k, j1 + k))
                )
            continue
        osents = _sentences(old_p, old_starts, i1, i2)
        nsents = _sentences(new_p, new_starts, j1, j2)
        region_end = new_starts[j2]

        def gnew(b: int, nsents: list[_Sent] = nsents, region_end: int = region_end) -> int:
            return nsents[b][1] if b < len(nsents) else region_end

        for op, a1, a2, b1, b2 in _align([s[0] for s in osents], [s[0] for s in nsents]):
            if op == "equal":
                for k in range(a2 - a1):
                    o, n = osents[a1 + k], nsents[b1 + k]
                    keyed.append(((n[1], 1, 0), Block("equal", o[0], n[0], (), o[1], n[1], o[2], n[2])))
            elif op == "delete":
                left_old.extend((osents[a], gnew(b1)) for a in range(a1, a2))
            elif op == "insert":
                left_new.extend(nsents[b1:b2])
            else:
                pairs = dict(_align_pairs([s[0] for s in osents[a1:a2]], [s[0] for s in nsents[b1:b2]]))
                last_b: int | None = None
                for ia in range(a2 - a1):
                    o = osents[a1 + ia]
                    ib = pairs.get(ia)
                    if ib is None:
                        anchor = gnew(b1 if last_b is None else b1 + last_b + 1)
                        left_old.append((o, anchor))
                        continue
                    last_b = ib
                    n = nsents[b1 + ib]
                    # (difflib's replace regions share no sentence; a windowed one may)
                    kind = "equal" if o[0] == n[0] else "replace"
                    spans = diff_sentences(o[0], n[0])
                    keyed.append(((n[1], 1, 0), Block(kind, o[0], n[0], spans, o[1], n[1], o[2], n[2])))
                paired_b = set(pairs.values())
                left_new.extend(nsents[b1 + ib] for ib in range(b2 - b1) if ib not in paired_b)

    moved_old: set[int] = set()
    moved_new: set[int] = set()
    for k, nk in _pair_moves(left_old, left_new):
        o, n = left_old[k][0], left_new[nk]
        moved_old.add(k)
        moved_new.add(nk)
        spans = diff_sentences(o[0], n[0])
        keyed.append(((n[1], 1, 0), Block("move", o[0], n[0], spans, o[1], n[1], o[2], n[2])))
    for k, (o, anchor) in enumerate(left_old):
        if k not in moved_old:
            keyed.append(((anchor, 0, o[1]), Block("delete", o[0], None, (), o[1], None, o[2], None)))
    for nk, n in enumerate(left_new):
        if nk not in moved_new:
            keyed.append(((n[1], 1, 0), Block("insert", None, n[0], (), None, n[1], None, n[2])))

    keyed.sort(key=lambda kb: kb[0])
    blocks = _merge_runs([b for _, b in keyed])
    total = max(sum(map(len, old_p)), sum(map(len, new_p)), 1)
    return DocumentDiff(tuple(blocks), significance_of(blocks, total))


def _merge_runs(blocks: list[Block]) -> list[Block]:
    """Merge consecutive inserted (deleted) sentences of one paragraph into one block."""
    out: list[Block] = []
    texts: list[list[str]] = []  # the sentences of out[k] when it is a run being merged
    for b in blocks:
        last = out[-1] if out else None
        run = len(texts[-1]) if texts else 0
        if (
            last is not None
            and b.op == last.op == "insert"
            and b.new_paragraph == last.new_paragraph
            and b.new_index == last.new_index + run  # type: ignore[operator]
        ):
            texts[-1].append(b.new)  # type: ignore[arg-type]
        elif (
            last is not None
            and b.op == last.op == "delete"
            and b.old_paragraph == last.old_paragraph
            and b.old_index == last.old_index + run  # type: ignore[operator]
        ):
            texts[-1].append(b.old)  # type: ignore[arg-type]
        else:
            out.append(b)
            texts.append([(b.new if b.op == "insert" else b.old) or ""])
    # (joined once at the end: adding sentence by sentence is quadratic in a long run)
    for k, b in enumerate(out):
        if len(texts[k]) > 1:
            text = "".join(texts[k])
            if b.op == "insert":
                out[k] = Block("insert", None, text, (), None, b.new_index, None, b.new_paragraph)
            else:
                out[k] = Block("delete", text, None, (), b.old_index, None, b.old_paragraph, None)
    return out


# --------------------------------------------------------------------------------------------------
# significance


def _char_weight(ch: str) -> float:
    if ch.isdigit():
        return DIGIT_WEIGHT
    if ch in PARTICLES:
        return PARTICLE_WEIGHT
    if unicodedata.category(ch)[0] in "PSZC":
        return PUNCT_WEIGHT
    return 1.0


def _weight(text: str | None) -> float:
    return sum(map(_char_weight, text)) if text else 0.0


def significance_of(blocks: Sequence[Block], total_chars: int) -> float:
    """Significance of a list of blocks in a document of ``total_chars`` characters (see module doc).

    >>> diff = diff_texts(["第一条 数据要素。", "第二条 培育市场。"], ["第一条 数据要素市场。"])
    >>> significance_of(diff.blocks, 18) == diff.significance  # old text: 18 characters
    True
    >>> round(significance_of(diff.blocks, 18), 3)
    0.628
    >>> figure = diff_texts(["增长35%。"], ["增长50%。"])  # "35"->"50": W = 10
    >>> round(significance_of(figure.blocks, 10_000), 3)  # as if in a 10,000-character document
    0.222
    >>> significance_of([], 18)
    0.0
    """
    w = 0.0
    for b in blocks:
        if b.op == "equal":
            continue
        if b.op == "insert":
            w += _weight(b.new)
        elif b.op == "delete":
            w += _weight(b.old)
        else:
            if b.op == "move":
                w += MOVE_WEIGHT * len(b.new or "")
            for s in b.spans:
                w += max(_weight(s.old_text), _weight(s.new_text))
    if w <= 0.0:
        return 0.0
    share = min(1.0, w / max(total_chars, 1))
    return min(1.0, 1.0 - (1.0 - share) * math.exp(-w / SATURATION))


# --------------------------------------------------------------------------------------------------
# reconstruction


def _side_paragraphs(blocks: Sequence[Block], side: str) -> list[str]:
    text_of = (lambda b: b.old) if side == "old" else (lambda b: b.new)
    index_of = (lambda b: b.old_index) if side == "old" else (lambda b: b.new_index)
    para_of = (lambda b: b.old_paragraph) if side == "old" else (lambda b: b.new_paragraph)
    chosen = sorted((b for b in blocks if text_of(b) is not None), key=index_of)
    paragraphs: list[list[str]] = []
    current: int | None = None
    for b in chosen:
        p = para_of(b)
        if p is None:
            raise ValueError(f"block without {side} paragraph index: {b!r}")
        if p != current:
            if p != len(paragraphs):
                raise ValueError(f"{side} paragraph {p} out of order")
            paragraphs.append([])
            current = p
        paragraphs[-1].append(text_of(b))
    return ["".join(parts) for parts in paragraphs]


def apply_diff(old_paragraphs: Sequence[str], diff: DocumentDiff) -> str:
    """Apply ``diff`` to the old paragraphs and return the new text (paragraphs joined by "\\n").

    Raises ``ValueError`` when the old side of the diff does not rebuild ``old_paragraphs`` (empty
    paragraphs ignored), i.e. when the diff was not made from this old text.

    >>> old = ["第一条 数据要素。", "第二条 附则。"]
    >>> diff = diff_texts(old, ["第一条 数据要素市场。", "第二条 附则。"])
    >>> print(apply_diff(old, diff))
    第一条 数据要素市场。
    第二条 附则。
    >>> apply_diff(["第一条 其他。"], diff)
    Traceback (most recent call last):
      ...
    ValueError: the diff was not computed from these old paragraphs
    """
    expected = [p for p in old_paragraphs if p]
    if _side_paragraphs(diff.blocks, "old") != expected:
        raise ValueError("the diff was not computed from these old paragraphs")
    return "\n".join(_side_paragraphs(diff.blocks, "new"))
