"""Attachment extraction: time and peak memory for a 100-page PDF and a 5 MB DOCX.

    python -m benchmarks.attachments [--reps 3] [--name attachments]

The files are generated (tests.test_attachment_files' generators, with sentences of the demo
corpus in random order): a 100-page GB/T 9704-style PDF in the CID font STSong-Light with running
header and page numbers, and a DOCX of 5 MB of Chinese paragraphs and a table (text only: the worst
case; a 5 MB DOCX of scanned images holds far less text). Each repetition runs in a fresh Python process that calls `extract_file` as the pipeline
does (isolated: a child process with timeout and RLIMIT_AS); the figures are the wall time of the
call and the peak RSS (ru_maxrss) of the extraction child, and also the time of the same
extraction in-process (isolate=False) to show what the child process costs. Median of --reps.
Results: benchmarks/results/<name>-<date>.json, with the machine and the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _random_paragraphs(count: int, seed: int = 1) -> list[str]:
    """Policy-like paragraphs: sentences of the demo corpus in random order with random figures, so
    that deflate (a 32 KB window) compresses them as it does real text, not as one repeated text."""
    import random
    import re

    from benchmarks.pages import paragraph_pool
    from policywatch.policydiff import split_sentences

    rng = random.Random(seed)
    sentences = [s for p in paragraph_pool() for s in split_sentences(p)]
    out = []
    for i in range(count):
        text = "".join(rng.choice(sentences) for _ in range(8))
        out.append(f"（{i + 1}）" + re.sub(r"\d+", lambda _m: str(rng.randrange(1, 10_000)), text))
    return out


def build_files(directory: Path) -> dict[str, Path]:
    from tests.test_attachment_files import make_docx, make_pdf

    # 100 pages at A4/16 pt (about 560 characters a page), the last pages filled to 100 if short.
    pdf = make_pdf(_random_paragraphs(150), pages_at_least=100)
    # A probe gives the bytes per paragraph; the real file is sized from it (grown if short).
    probe = len(make_docx(_random_paragraphs(200), rows=50))
    count = int(5.1 * 2**20 / probe * 200)
    while True:
        docx = make_docx(_random_paragraphs(count), rows=500)
        if len(docx) >= 5 * 2**20:
            break
        count = int(count * 1.05)
    files = {"pdf": directory / "plan-100p.pdf", "docx": directory / "plan-5mb.docx"}
    files["pdf"].write_bytes(pdf)
    files["docx"].write_bytes(docx)
    return files


def measure_one(kind: str, path: str) -> dict[str, float | int | str]:
    """In this (fresh) process: the isolated extraction, then the in-process one."""
    from policywatch.extraction.files import FileLimits, extract_file

    body = Path(path).read_bytes()
    url = f"https://bench.example/{Path(path).name}"
    start = time.perf_counter()
    doc = extract_file(body, kind, url)
    isolated = time.perf_counter() - start
    child_rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    extract_file(body, kind, url, replace(FileLimits(), isolate=False))
    in_process = time.perf_counter() - start
    return {
        "seconds": round(isolated, 3),
        "in_process_seconds": round(in_process, 3),
        "child_peak_rss_mib": round(child_rss_kib / 1024, 1),
        "bytes": len(body),
        "paragraphs": len(doc.paragraphs),
        "characters": sum(map(len, doc.paragraphs)),
        "reasons": " | ".join(doc.reasons),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--name", default="attachments")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return 0

    root = Path(__file__).resolve().parents[1]
    load_before = os.getloadavg()
    started = time.monotonic()
    cases: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="pw-bench-attachments-") as tmp:
        files = build_files(Path(tmp))
        for kind, path in files.items():
            runs = []
            for _ in range(args.reps):
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.attachments", "--one", kind, str(path)],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(json.loads(out.stdout))
            case: dict[str, object] = {
                k: runs[0][k] for k in ("bytes", "paragraphs", "characters", "reasons")
            }
            for key in ("seconds", "in_process_seconds", "child_peak_rss_mib"):
                case[key] = statistics.median(r[key] for r in runs)
                case[f"{key}_runs"] = [r[key] for r in runs]
            cases[kind] = case
            print(
                f"{kind}: {case['bytes']} bytes, {case['seconds']} s, peak {case['child_peak_rss_mib']} MiB"
            )
    result = {
        "name": args.name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.attachments " + " ".join(argv or sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "libraries": {
            name: _version(name)
            for name in ("pdfminer.six", "python-docx", "openpyxl", "defusedxml", "reportlab")
        },
        "reps": args.reps,
        "elapsed_s": round(time.monotonic() - started, 1),
        "cases": cases,
    }
    RESULTS.mkdir(exist_ok=True)
    out_path = RESULTS / f"{args.name}-{dt.date.today().isoformat()}.json"
    out_path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(out_path)
    return 0


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
