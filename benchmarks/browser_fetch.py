"""A browser source against the same source over requests: pages per second and peak memory.

    python -m benchmarks.browser_fetch [--pages 60] [--name browser-fetch]

The site is tests/support/challenges.py on 127.0.0.1: N policy pages behind 加速乐 (Jiasule: a
521 cookie script, then a go({...}) hash stage, computed in the page). Four runs over the same N
pages, each with a fresh fetcher (so each pays for its start):

    requests         the plain Fetcher on the same pages with the challenge switched off (what the
                     source costs when nothing defends it; behind the challenge every page is an error)
    requests-blocked the plain Fetcher behind the challenge: every page a `challenge:jiasule` error
    browser          BrowserFetcher with the cheap path: the first page in Chromium, the cookies it
                     earned carry the rest over plain HTTP
    browser-only     BrowserFetcher with the cheap path off: every page loaded in Chromium

Peak memory is sampled every 20 ms: the proportional set size (PSS: shared pages divided among
the processes sharing them) of this process plus every child process (Chromium's browser,
renderer, GPU/utility processes); `over_start` is that minus the same sum before the run. Results: benchmarks/results/<name>-<date>.json, with the machine and its load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from crawlers import Fetcher
from crawlers.browser import CHROMIUM, BrowserFetcher
from tests.support.challenges import ChallengeSite

RESULTS = Path(__file__).resolve().parent / "results"


class PeakMemory:
    """Peak PSS of this process and its children while the block runs (sampled)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self.baseline = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def total() -> int:
        # PSS (proportional set size): Chromium's processes share most of their pages, and a sum
        # of their RSS would count the shared ones once per process.
        me = psutil.Process()
        pss = me.memory_full_info().pss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                pss += child.memory_full_info().pss
        return pss

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.total())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self.baseline = self.total()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.total())


def run(label: str, site: ChallengeSite, make: Any, paths: list[str]) -> dict[str, Any]:
    ok = errors = 0
    reasons: set[str] = set()
    first_done = last_done = 0.0
    with PeakMemory() as memory:
        started = time.perf_counter()
        fetcher = make()
        try:
            for path in paths:
                result = fetcher.fetch_page(site.url(path), min_delay_s=0, allow_private=True)
                last_done = time.perf_counter()
                if not first_done:
                    first_done = last_done
                if result.ok:
                    ok += 1
                else:
                    errors += 1
                    reasons.add((result.error or "")[:90])
        finally:
            fetcher.close()
        seconds = time.perf_counter() - started
    row: dict[str, Any] = {
        "run": label,
        "pages": len(paths),
        "ok": ok,
        "errors": errors,
        "error_reasons": sorted(reasons),
        "seconds": round(seconds, 3),  # the fetcher's start and close included
        "pages_per_s": round(len(paths) / seconds, 2),
        # Start-up and the first page (Chromium's launch, the challenge), then the steady pace.
        "first_page_s": round(first_done - started, 3),
        "after_first_pages_per_s": round((len(paths) - 1) / max(1e-9, last_done - first_done), 2)
        if len(paths) > 1
        else None,
        "peak_pss_mb": round(memory.peak / 2**20, 1),
        "peak_pss_over_start_mb": round((memory.peak - memory.baseline) / 2**20, 1),
    }
    if isinstance(fetcher, BrowserFetcher):
        row["stats"] = dict(fetcher.stats)
        row["cheap_path_share"] = round(fetcher.stats["http"] / max(1, len(paths)), 3)
    print(
        f"{label:17} {row['pages_per_s']:8.2f} pages/s  ok {ok:3}/{len(paths)}  "
        f"peak {row['peak_pss_mb']:7.1f} MB (+{row['peak_pss_over_start_mb']:.1f})  {row.get('stats', '')}"
    )
    return row


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        chromium = ""
    from importlib.metadata import version

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "chromium": chromium.strip(),
        "playwright": version("playwright"),
        "requests": version("requests"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pages", type=int, default=60, help="documents behind the challenge")
    parser.add_argument("--name", default="browser-fetch")
    args = parser.parse_args()
    site = ChallengeSite(documents_per_vendor=args.pages, hanweb_documents=1)
    paths = [f"/jsl/art/{n}.html" for n in range(1, args.pages + 1)]
    load_before = os.getloadavg()
    rows = []
    try:
        site.protected = False
        rows.append(run("requests", site, lambda: Fetcher(max_attempts=1), paths))
        site.protected = True
        rows.append(run("requests-blocked", site, lambda: Fetcher(max_attempts=1), paths))
        site.revoke()
        rows.append(run("browser", site, lambda: BrowserFetcher(max_attempts=1), paths))
        site.revoke()
        rows.append(
            run("browser-only", site, lambda: BrowserFetcher(max_attempts=1, cheap_path=False), paths)
        )
    finally:
        site.close()
    by = {row["run"]: row for row in rows}
    summary = {
        "browser_vs_requests_speed": round(by["browser"]["pages_per_s"] / by["requests"]["pages_per_s"], 3),
        "browser_only_vs_requests_speed": round(
            by["browser-only"]["pages_per_s"] / by["requests"]["pages_per_s"], 3
        ),
        "browser_extra_peak_mb": round(by["browser"]["peak_pss_mb"] - by["requests"]["peak_pss_mb"], 1),
    }
    out = {
        "benchmark": "browser_fetch",
        "command": f"python -m benchmarks.browser_fetch --pages {args.pages}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "runs": rows,
        "summary": summary,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name}-{datetime.now(UTC).date().isoformat()}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
