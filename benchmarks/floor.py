"""What a page must cost per phase, against what issue 13's goals leave it (`make bench-floor`).

    python -m benchmarks.floor [RESULTS.json] [--pages 200] [--profiles baseline,sidebars,...] [--name NAME]

RESULTS is a `make bench` result (default: the newest in benchmarks/results/ with urlwatch's figures
for every phase): it gives urlwatch's pages/s for every
profile and phase, and how many pages a cycle checked. For each of its profiles this starts the
benchmark site with that noise and times, on one thread with thread_time, over --pages of its pages,
each step a PolicyWatch cycle takes for a page:

  fetch      Fetcher.fetch_page: requests, decoding, the challenge check (a 200)
  fetch_304  the same with the validators of the last answer (the site's ETag mode: a 304)
  parse      libxml2's tree of the repaired markup (lxml)
  parse_checked  the same parse and the check that the tree lost no text (the fast path's guard
                 against malformed pages): what the fast path pays
  evidence   the fingerprint's reading of the tree (extraction's decisions replayed on it)
  soup       BeautifulSoup's tree (the extractor reads it)
  extract    extract_document in full (the soup included)
  pack       the raw page hashed and compressed for the store

and, measured apart, the imports a cycle's process starts with and the site's own CPU per request.

The budget of a phase: urlwatch's pages/s times the goal ratio is the rate to reach, so a cycle of
the result's page count may take W seconds of wall time. The imports run alone before any page (a
serial start), so the pages share `cores × (W − imports)` CPU seconds, less what the site spends
serving them: divided by the pages, the CPU one page may cost, every process of the cycle together.

The floor of a phase is the sum of the steps it cannot skip: the hard floor (what any design on this
stack pays: fetching with requests, libxml2's parse, BeautifulSoup's tree where extraction runs),
and the floor as built (every step this design takes). For cold, also the bound of an extractor
without BeautifulSoup: fetch, parse, the completeness check, the evidence pass (extraction's
decisions, no paragraphs yet) and pack. The version stage's writes are counted in none of them, so
all are lower bounds; RESULTS' own figure for them (CPU ms per page in the one writer thread, which
no worker can share) is reported beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.pages import doc_spec
from benchmarks.run import RESULTS, ROOT, Site, machine

GOALS = {"cold": 1.5, "warm": 2.0, "changed": 2.0, "304": 3.0}
CHANGED_FRACTION = 0.05
HARD = {
    "cold": ("fetch", "soup"),
    "warm": ("fetch", "parse"),
    "changed": ("fetch", "parse"),
    "304": ("fetch_304",),
}
LXML_BOUND = ("fetch", "parse_checked", "evidence", "pack")  # cold without BeautifulSoup
AS_BUILT = {
    "cold": ("fetch", "extract", "pack"),
    "warm": ("fetch", "parse_checked", "evidence"),
    "changed": ("fetch", "parse_checked", "evidence"),  # + CHANGED_FRACTION of extract and pack
    "304": ("fetch_304",),
}
_IMPORTS = (
    "import time; t = time.perf_counter(); "
    "from policywatch import pipeline; from policywatch.config import load_config; "
    "from storage.db import make_engine; print(time.perf_counter() - t)"
)


def import_seconds(runs: int = 5) -> float:
    """The median time of a cycle process's imports (what benchmarks.pw_cycle reports as import_s)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", _IMPORTS], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(items: list[Any], step: Callable[[Any], Any], repeat: int = 3) -> tuple[float, list[Any]]:
    """(CPU ms per item, the results) of `step` over `items` on this thread: the least of `repeat`
    passes (a floor: other work on the machine only ever adds to a pass)."""
    best = float("inf")
    out: list[Any] = []
    for _ in range(repeat):
        started = time.thread_time()
        out = [step(item) for item in items]
        best = min(best, (time.thread_time() - started) / len(items) * 1000)
    return best, out


def measure_steps(site: Site, pages: int) -> dict[str, float]:
    """CPU ms per page of every step (module doc), and the site's CPU ms per request."""
    from bs4 import BeautifulSoup

    from policywatch.config import Settings
    from policywatch.extraction.document import extract_document
    from policywatch.extraction.equivalence import _complete_tree, _evidence, _parse
    from policywatch.extraction.markup import repair_markup
    from policywatch.observe import make_fetcher
    from storage.raw import pack_page

    fetcher = make_fetcher(Settings())
    urls = [f"{site.base_url}{doc_spec(i).path}" for i in range(pages)]

    def fetch(url: str) -> Any:
        return fetcher.fetch_page(url, min_delay_s=0, allow_private=True)

    fetch(urls[0])  # the connection is set up once per cycle, not per page
    site.control("etag?on=0")
    site_before = _process_cpu_s(site.proc.pid)
    ms: dict[str, float] = {}
    ms["fetch"], results = _timed(urls, fetch)
    ms["site_per_request"] = (_process_cpu_s(site.proc.pid) - site_before) / (3 * pages) * 1000
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} of {pages} pages failed: {failed[0].url}: {failed[0].error}")
    htmls = [r.text or "" for r in results]
    site.control("etag?on=1")
    validators = [(url, fetch(url)) for url in urls]  # the validators of the last answer

    def fetch_again(item: tuple[str, Any]) -> Any:
        url, first = item
        return fetcher.fetch_page(
            url, etag=first.etag, last_modified=first.last_modified, min_delay_s=0, allow_private=True
        )

    ms["fetch_304"], again = _timed(validators, fetch_again)  # a 304 leaves the validators as they were
    site.control("etag?on=0")
    if not all(r.not_modified for r in again):
        raise RuntimeError("the site did not answer every conditional request with a 304")
    repaired = [repair_markup(h) for h in htmls]
    ms["parse"], _ = _timed(repaired, _parse)
    ms["parse_checked"], _ = _timed(htmls, _complete_tree)
    # _evidence takes what it reads out of the tree it is given: a fresh tree for every pass.
    evidence_ms = []
    for _ in range(3):
        trees = [_parse(r) for r in repaired]
        evidence_ms.append(_timed(trees, _evidence, repeat=1)[0])
    ms["evidence"] = min(evidence_ms)
    ms["soup"], _ = _timed(repaired, lambda h: BeautifulSoup(h, "lxml"))
    ms["extract"], _ = _timed(htmls, lambda h: extract_document(h, site.base_url))
    ms["pack"], _ = _timed(htmls, pack_page)
    fetcher.close()
    return {k: round(v, 3) for k, v in ms.items()}


def newest_bench_result(folder: Path = RESULTS) -> Path:
    """The newest `make bench` result in `folder` (by the date it records: a fresh clone gives every
    file the same modification time) that holds urlwatch's figures for every phase."""
    found: list[tuple[str, float, Path]] = []
    for path in folder.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            profiles = data["profiles"]
            if profiles and all("urlwatch" in e["phases"][p] for e in profiles.values() for p in GOALS):
                found.append((str(data.get("date", "")), path.stat().st_mtime, path))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    if not found:
        raise SystemExit(f"no make bench result with urlwatch's figures in {folder}: run make bench first")
    return max(found)[2]


def budget_ms(goal_pages_per_s: float, pages: int, imports_s: float, site_ms: float, cores: int) -> float:
    """The CPU ms one page may cost for a cycle of `pages` to run at `goal_pages_per_s` (module doc)."""
    wall = pages / goal_pages_per_s
    return (cores * (wall - imports_s) * 1000 - site_ms * pages) / pages


def floors(steps: dict[str, float], phase: str) -> tuple[float, float]:
    """(hard floor, floor as built) of `phase` in CPU ms per page."""
    hard = sum(steps[s] for s in HARD[phase])
    built = sum(steps[s] for s in AS_BUILT[phase])
    if phase == "changed":
        built += CHANGED_FRACTION * (steps["extract"] + steps["pack"])
    return round(hard, 3), round(built, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", help="a make bench result (default: the newest)")
    parser.add_argument("--pages", type=int, default=200, help="pages timed per profile")
    parser.add_argument("--profiles", help="comma-separated (default: every profile of RESULTS)")
    parser.add_argument("--name", default="floor")
    args = parser.parse_args(argv)
    args.results = args.results or newest_bench_result()
    bench = json.loads(args.results.read_text(encoding="utf-8"))
    cycle_pages = bench["settings"]["pages"]
    profiles = args.profiles.split(",") if args.profiles else list(bench["profiles"])
    cores = os.cpu_count() or 1
    imports_s = import_seconds()
    print(f"imports of a cycle's process: {imports_s:.3f} s (median of 5); {cores} cores", flush=True)
    out: dict[str, Any] = {}
    for profile in profiles:
        site = Site(max(args.pages, 1), profile)
        try:
            steps = measure_steps(site, args.pages)
        finally:
            site.close()
        entry: dict[str, Any] = {"steps_cpu_ms_per_page": steps, "phases": {}}
        print(
            f"{profile:>11} steps (CPU ms/page, least of 3): "
            + ", ".join(f"{k} {v}" for k, v in steps.items())
        )
        for phase, goal in GOALS.items():
            urlwatch = bench["profiles"][profile]["phases"][phase]["urlwatch"]["pages_per_s"]
            budget = budget_ms(goal * urlwatch, cycle_pages, imports_s, steps["site_per_request"], cores)
            hard, built = floors(steps, phase)
            stages = bench["profiles"][profile]["phases"][phase]["policywatch"].get(
                "stage_cpu_ms_per_page", {}
            )
            writer = round(sum(stages.get(s, 0.0) for s in ("version", "diff", "alert")), 3)
            entry["phases"][phase] = {
                "urlwatch_pages_per_s": urlwatch,
                "goal_ratio": goal,
                "budget_cpu_ms_per_page": round(budget, 3),
                "hard_floor_cpu_ms_per_page": hard,
                "as_built_floor_cpu_ms_per_page": built,
                "hard_floor_fits": hard <= budget,
                "writer_cpu_ms_per_page_measured": writer,
            }
            if phase == "cold":
                entry["phases"][phase]["lxml_extractor_bound_cpu_ms_per_page"] = round(
                    sum(steps[s] for s in LXML_BOUND), 3
                )
            print(
                f"{profile:>11} {phase:>7}: budget {budget:6.2f} ms/page for {goal} x urlwatch's "
                f"{urlwatch} pages/s | hard floor {hard:6.2f} | as built {built:6.2f} | writer {writer:5.2f}"
                + (f" | without soup {sum(steps[s] for s in LXML_BOUND):5.2f}" if phase == "cold" else "")
            )
        out[profile] = entry
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.name}-{datetime.now(UTC).date().isoformat()}.json"
    record = {
        "name": args.name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.floor", *(argv if argv is not None else sys.argv[1:])]),
        "from_results": str(args.results),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "settings": {"pages_timed": args.pages, "cycle_pages": cycle_pages, "cores": cores},
        "imports_s": round(imports_s, 3),
        "profiles": out,
    }
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
