"""policydiff on very large documents: seconds per diff at 7,500 / 15,000 / 30,000 / 60,000 sentences
with 10% and 1% of the sentences edited, for three shapes of document:

    register  a register printed as a table, one cell per paragraph (row number, a unique company
              name, then city, industry, 是/否, an amount: values repeated all over the page)
    text      the sample corpus (demosite/corpus) over and over, every copy's sentences numbered
              ("[3]..."), so that sentences are distinct but copies near-identical
    repeated  the sample corpus over and over, verbatim (every paragraph occurs many times)

    python -m benchmarks.diff_scale [--sizes 7500,15000,30000,60000] [--fractions 0.1,0.01]
                                    [--shapes register,text,repeated] [--before DIR]
                                    [--before-max-seconds 300] [--name diff-scale]

An edit picks sentences at random: half get a character or a figure changed, 20% are deleted, 20%
get a new sentence after them, 10% move elsewhere. `--before DIR` also times the policydiff package
in DIR (a copy of an older policydiff/, imported by path), e.g. to compare with the code before a
change: `cp -r policydiff /tmp/policydiff_before` first. Once a shape takes the old code longer
than --before-max-seconds, its larger sizes are not run on it. Every diff of the current code is
checked to rebuild the new text (apply_diff; not timed). Results:
benchmarks/results/<name>-<date>.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from policywatch import policydiff
from policywatch.demosite.pages import corpus_document
from policywatch.extraction import normalise_text
from policywatch.policydiff import apply_diff, split_sentences

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = ("register", "text", "repeated")
CITIES = (
    "南昌市",
    "九江市",
    "赣州市",
    "上饶市",
    "宜春市",
    "吉安市",
    "抚州市",
    "景德镇市",
    "萍乡市",
    "新余市",
    "鹰潭市",
)
INDUSTRIES = ("软件和信息技术服务业", "电子信息制造业", "互联网和相关服务", "智能制造", "数字创意产业")
NAME_PARTS = ("华信", "赣数", "云智", "数联", "创新", "恒通", "博远", "智谷", "天合", "中科")
EDIT_CHARS = "数据要素平台规划"


@cache
def corpus_paragraphs_normalised() -> tuple[str, ...]:
    """The body paragraphs of the four corpus texts, in comparison form (as the pipeline diffs them)."""
    out: list[str] = []
    for name in ("004", "003", "000", "001"):
        out.extend(p for p in (normalise_text(p) for p in corpus_document(name)[1]) if p)
    return tuple(out)


def document(shape: str, sentences: int) -> list[str]:
    """Paragraphs of a document of `shape` with `sentences` sentences (deterministic)."""
    paragraphs: list[str] = []
    count = 0
    if shape == "register":
        rng = random.Random(sentences)
        row = 0
        while count < sentences:
            row += 1
            city = rng.choice(CITIES)
            name = f"{city[:-1]}{rng.choice(NAME_PARTS)}{rng.choice(NAME_PARTS)}{row}号科技有限公司"
            cells = [
                str(row),
                name,
                city,
                rng.choice(INDUSTRIES),
                rng.choice("是否"),
                f"{rng.randrange(50, 5000)}万元",
            ]
            cells = cells[: sentences - count]
            paragraphs.extend(cells)
            count += len(cells)
        return paragraphs
    if shape not in ("text", "repeated"):
        raise ValueError(f"unknown shape {shape!r}")
    pool = corpus_paragraphs_normalised()
    k = 0
    while count < sentences:
        copy, at = divmod(k, len(pool))
        parts = split_sentences(pool[at])
        if shape == "text" and copy:
            parts = [f"[{copy}]{s}" for s in parts]
        parts = parts[: sentences - count]
        paragraphs.append("".join(parts))
        count += len(parts)
        k += 1
    return paragraphs


def _modified(sentence: str, rng: random.Random) -> str:
    digits = [i for i, c in enumerate(sentence) if c.isdigit()]
    if digits and rng.random() < 0.5:
        i = rng.choice(digits)
        return sentence[:i] + str((int(sentence[i]) + 1) % 10) + sentence[i + 1 :]
    body = len(sentence.rstrip("。！？；!?;”’」』)）]】》〉 ")) or len(sentence)
    i = rng.randrange(body)
    return sentence[:i] + rng.choice(EDIT_CHARS) + sentence[i + 1 :]


def edited(paragraphs: list[str], fraction: float, seed: int = 1) -> list[str]:
    """`paragraphs` with `fraction` of the sentences edited: 50% changed (a character or a figure),
    20% deleted, 20% followed by a new sentence, 10% moved to a random place."""
    rng = random.Random(seed)
    sentences = [split_sentences(p) for p in paragraphs]
    slots = [(p, k) for p, parts in enumerate(sentences) for k in range(len(parts))]
    moved: list[str] = []
    for p, k in rng.sample(slots, round(len(slots) * fraction)):
        s = sentences[p][k]
        r = rng.random()
        if r < 0.5:
            sentences[p][k] = _modified(s, rng)
        elif r < 0.7:
            sentences[p][k] = ""
        elif r < 0.9:
            sentences[p][k] = (
                s
                + f"各地区要在{rng.randrange(2, 36)}个月内完成第{rng.randrange(1, 10**6)}批数据要素登记工作。"
            )
        else:
            sentences[p][k] = ""
            moved.append(s)
    for s in moved:
        p = rng.randrange(len(sentences))
        sentences[p].insert(rng.randrange(len(sentences[p]) + 1), s)
    return [text for text in ("".join(parts) for parts in sentences) if text]


def load_package(directory: str) -> ModuleType:
    """Import the policydiff package copy in `directory` under another name."""
    path = Path(directory).resolve()
    spec = importlib.util.spec_from_file_location(
        "policydiff_before", path / "__init__.py", submodule_search_locations=[str(path)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no package in {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["policydiff_before"] = module
    spec.loader.exec_module(module)
    return module


def timed(module: ModuleType, old: list[str], new: list[str]) -> tuple[dict[str, Any], Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    diff = module.diff_texts(old, new)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ops = Counter(b.op for b in diff.changes)
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "changes": dict(sorted(ops.items())),
        "significance": round(diff.significance, 4),
    }, diff


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="7500,15000,30000,60000", help="sentences per document")
    parser.add_argument("--fractions", default="0.1,0.01", help="share of sentences edited")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--before", help="directory of an older policydiff package to time too")
    parser.add_argument("--before-max-seconds", type=float, default=300.0)
    parser.add_argument("--name", default="diff-scale")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    shapes = [s for s in args.shapes.split(",") if s.strip()]
    before = load_package(args.before) if args.before else None

    def log(message: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)

    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "python -m benchmarks.diff_scale " + " ".join(argv if argv is not None else sys.argv[1:]),
        "before": str(Path(args.before).resolve()) if args.before else None,
        "runs": [],
    }
    for shape in shapes:
        for fraction in fractions:
            before_too_slow = False
            for size in sizes:
                old = document(shape, size)
                new = edited(old, fraction)
                run: dict[str, Any] = {
                    "shape": shape,
                    "sentences": size,
                    "edited": fraction,
                    "paragraphs": [len(old), len(new)],
                    "characters": sum(map(len, old)),
                }
                after, diff = timed(policydiff, old, new)
                if apply_diff(old, diff) != "\n".join(new):
                    raise SystemExit(f"{shape} {size} {fraction}: the diff does not rebuild the new text")
                run["after"] = after
                if before is not None:
                    if before_too_slow:
                        run["before"] = None
                    else:
                        run["before"], _ = timed(before, old, new)
                        before_too_slow = run["before"]["seconds"] > args.before_max_seconds
                report["runs"].append(run)
                was = ""
                if run.get("before"):
                    was = f"before {run['before']['seconds']:7.2f} s (cpu {run['before']['cpu_seconds']:7.2f}), "
                log(
                    f"{shape:9s} {size:>6} sentences, {fraction:>4.0%} edited: {was}"
                    f"after {after['seconds']:6.2f} s (cpu {after['cpu_seconds']:6.2f}), "
                    f"{sum(after['changes'].values())} changes"
                )
    report["machine"]["loadavg_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}-{datetime.now(UTC).date().isoformat()}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
