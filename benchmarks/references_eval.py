"""Precision and recall of reference extraction (policywatch.citations) on the labelled set.

    python -m benchmarks.references_eval [--set tests/fixtures/references/heldout.jsonl] [--misses]

Two sets of real passages, labelled by hand: labelled.jsonl (the rules were adjusted after reading it:
its figures flatter the extractor) and heldout.jsonl (labelled afterwards and never tuned on).

A predicted reference matches a labelled one when both name the same document (the same canonical
发文字号 when both carry one, else the same title compared without quotation marks, spaces and
bracket styles) and give it the same relation. Also reported: detection alone (the document found,
whatever the relation). Writes benchmarks/results/references-<set>-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policywatch.citations import KINDS, find_references

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SET = ROOT / "tests" / "fixtures" / "references" / "labelled.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"


def title_form(title: str | None) -> str | None:
    if not title:
        return None
    text = unicodedata.normalize("NFKC", title)
    return re.sub(r"[\s\"'《》“”‘’「」〈〉<>＜＞]", "", text)


@dataclass(frozen=True)
class Ref:
    kind: str
    title: str | None
    number: str | None

    def same_document(self, other: Ref) -> bool:
        if self.number and other.number:
            return self.number == other.number
        return self.title is not None and self.title == other.title


def _match(predicted: list[Ref], labelled: list[Ref], with_kind: bool) -> tuple[int, list[Ref], list[Ref]]:
    """Greedy one-to-one matching: (matches, unmatched predictions, unmatched labels)."""
    left = list(labelled)
    extra = []
    hits = 0
    for p in predicted:
        found = next(
            (lab for lab in left if lab.same_document(p) and (not with_kind or lab.kind == p.kind)), None
        )
        if found is None:
            extra.append(p)
        else:
            left.remove(found)
            hits += 1
    return hits, extra, left


def _ratio(a: int, b: int) -> float:
    return round(a / b, 3) if b else 1.0


def evaluate(path: Path = DEFAULT_SET) -> dict[str, Any]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    tp = fp = fn = 0
    detect_tp = detect_fp = detect_fn = 0
    per_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    misses, false_positives = [], []
    for row in rows:
        labelled = [Ref(r["kind"], title_form(r["title"]), r["doc_number"]) for r in row["references"]]
        predicted = [
            Ref(r.kind, title_form(r.title), r.doc_number)
            for r in find_references(row["text"], title=row.get("title"), number=row.get("doc_number"))
        ]
        hits, extra, left = _match(predicted, labelled, with_kind=True)
        tp, fp, fn = tp + hits, fp + len(extra), fn + len(left)
        d_hits, d_extra, d_left = _match(predicted, labelled, with_kind=False)
        detect_tp, detect_fp, detect_fn = (
            detect_tp + d_hits,
            detect_fp + len(d_extra),
            detect_fn + len(d_left),
        )
        for kind in KINDS:
            k_hits, k_extra, k_left = _match(
                [p for p in predicted if p.kind == kind], [lab for lab in labelled if lab.kind == kind], True
            )
            per_kind[kind].update(tp=k_hits, fp=len(k_extra), fn=len(k_left))
        misses += [
            {"id": row["id"], "missed": vars(r), "predicted": [vars(p) for p in predicted]} for r in left
        ]
        false_positives += [{"id": row["id"], "predicted": vars(p)} for p in extra]
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "passages": len(rows),
        "references": sum(len(r["references"]) for r in rows),
        "labelled_by_kind": dict(Counter(ref["kind"] for r in rows for ref in r["references"])),
        "precision": precision,
        "recall": recall,
        "f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
        "detection": {
            "precision": _ratio(detect_tp, detect_tp + detect_fp),
            "recall": _ratio(detect_tp, detect_tp + detect_fn),
        },
        "per_kind": {
            kind: {
                "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
                "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
                "labelled": c["tp"] + c["fn"],
            }
            for kind, c in per_kind.items()
        },
        "misses": misses,
        "false_positives": false_positives,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET)
    parser.add_argument("--misses", action="store_true", help="print every miss and false positive")
    args = parser.parse_args()
    result = evaluate(args.set)
    print(
        f"{result['passages']} passages, {result['references']} labelled references {result['labelled_by_kind']}"
    )
    print(
        f"relation and document: precision {result['precision']}, recall {result['recall']}, F1 {result['f1']}"
    )
    detection = result["detection"]
    print(f"document only:         precision {detection['precision']}, recall {detection['recall']}")
    print("| kind | labelled | precision | recall |\n|---|---|---|---|")
    for kind, figures in result["per_kind"].items():
        print(f"| {kind} | {figures['labelled']} | {figures['precision']} | {figures['recall']} |")
    if args.misses:
        for miss in result["misses"]:
            print("MISS", json.dumps(miss, ensure_ascii=False))
        for extra in result["false_positives"]:
            print("FALSE", json.dumps(extra, ensure_ascii=False))
    RESULTS.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    out = RESULTS / f"references-{args.set.stem}-{now:%Y-%m-%d}.json"
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    result["measured_at"] = now.isoformat()
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
