"""Diff two versions of a policy text given as lists of normalised paragraphs.

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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

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
#: Above this many leftover deletes x inserts only identical moves are looked for.
MOVE_PAIRING_LIMIT = 250_000

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
    """A changed part inside a sentence pair; offsets are into ``Block.old`` / ``Block.new``."""

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
# sentence level


def diff_sentences(old: str, new: str) -> tuple[Span, ...]:
    """Character spans that turn ``old`` into ``new`` (token-level difflib, see module docstring)."""
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
    sm = SequenceMatcher(None, ta[pre : len(ta) - suf], tb[pre : len(tb) - suf], autojunk=False)
    ops = [
        [tag, oa[pre + a1], oa[pre + a2], ob[pre + b1], ob[pre + b2]]
        for tag, a1, a2, b1, b2 in sm.get_opcodes()
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
    common 的 into one replace span.
    """
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
        sm = SequenceMatcher(None, old[pre : n - suf], new[pre : m - suf], autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
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
        for _, score, j in process.extract(
            s, news[lo:hi], scorer=fuzz.ratio, score_cutoff=PAIR_THRESHOLD, limit=None
        ):
            cands.append((i, lo + j, score))
    return _best_chain(cands, m)


def _pair_moves(left_old: list[tuple[_Sent, int]], left_new: list[_Sent]) -> list[tuple[int, int]]:
    """Pair leftover deleted and inserted sentences anywhere in the document (moves)."""
    pairs: list[tuple[int, int]] = []
    by_text: dict[str, list[int]] = defaultdict(list)
    for k, s in enumerate(left_new):
        by_text[s[0]].append(k)
    used_new: set[int] = set()
    rest_old: list[int] = []
    for k, (s, _) in enumerate(left_old):
        lst = by_text.get(s[0])
        if lst:
            nk = min(lst, key=lambda x: abs(left_new[x][1] - s[1]))
            lst.remove(nk)
            pairs.append((k, nk))
            used_new.add(nk)
        else:
            rest_old.append(k)
    rest_new = [k for k in range(len(left_new)) if k not in used_new]
    if rest_old and rest_new and len(rest_old) * len(rest_new) <= MOVE_PAIRING_LIMIT:
        texts = [left_new[k][0] for k in rest_new]
        cands = []
        for k in rest_old:
            s = left_old[k][0]
            for _, score, jj in process.extract(
                s[0], texts, scorer=fuzz.ratio, score_cutoff=PAIR_THRESHOLD, limit=None
            ):
                nk = rest_new[jj]
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
    """Diff two documents given as lists of normalised paragraphs (empty paragraphs are ignored)."""
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

        sm = SequenceMatcher(None, [s[0] for s in osents], [s[0] for s in nsents], autojunk=False)
        for op, a1, a2, b1, b2 in sm.get_opcodes():
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
                    spans = diff_sentences(o[0], n[0])
                    keyed.append(((n[1], 1, 0), Block("replace", o[0], n[0], spans, o[1], n[1], o[2], n[2])))
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
    run = 1  # sentences in out[-1]
    for b in blocks:
        last = out[-1] if out else None
        if (
            last is not None
            and b.op == last.op == "insert"
            and b.new_paragraph == last.new_paragraph
            and b.new_index == last.new_index + run  # type: ignore[operator]
        ):
            out[-1] = Block(
                "insert", None, last.new + b.new, (), None, last.new_index, None, last.new_paragraph
            )  # type: ignore[operator]
            run += 1
        elif (
            last is not None
            and b.op == last.op == "delete"
            and b.old_paragraph == last.old_paragraph
            and b.old_index == last.old_index + run  # type: ignore[operator]
        ):
            out[-1] = Block(
                "delete", last.old + b.old, None, (), last.old_index, None, last.old_paragraph, None
            )  # type: ignore[operator]
            run += 1
        else:
            out.append(b)
            run = 1
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
    """Significance of a list of blocks in a document of ``total_chars`` characters (see module doc)."""
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
    paragraphs: list[str] = []
    current: int | None = None
    for b in chosen:
        p = para_of(b)
        if p is None:
            raise ValueError(f"block without {side} paragraph index: {b!r}")
        if p != current:
            if p != len(paragraphs):
                raise ValueError(f"{side} paragraph {p} out of order")
            paragraphs.append("")
            current = p
        paragraphs[-1] += text_of(b)
    return paragraphs


def apply_diff(old_paragraphs: Sequence[str], diff: DocumentDiff) -> str:
    """Apply ``diff`` to the old paragraphs and return the new text (paragraphs joined by "\\n").

    Raises ``ValueError`` when the old side of the diff does not rebuild ``old_paragraphs`` (empty
    paragraphs ignored), i.e. when the diff was not made from this old text.
    """
    expected = [p for p in old_paragraphs if p]
    if _side_paragraphs(diff.blocks, "old") != expected:
        raise ValueError("the diff was not computed from these old paragraphs")
    return "\n".join(_side_paragraphs(diff.blocks, "new"))
