"""`make bench`: PolicyWatch and urlwatch on the same local site, measured alternately.

    python -m benchmarks.run [--pages 1000] [--reps 3] [--big-pages 10000] [--no-urlwatch] [--name NAME]
                             [--profiles baseline,sidebars,...] [--quick]

Every phase runs under each noise profile (benchmarks.pages.PROFILES: the builders' own counter
only, reordered sidebars, visit counters, rotating ads, nonces and CSRF tokens, footer timestamps,
shuffled attribute order, all of them mixed), each on its own site process. --quick: 200 pages,
one repetition, no big cycle (a few minutes for every profile).

Phases, each repetition on a fresh store (median of --reps):
  1 cold      empty store, every page new
  2 warm      nothing changed but the page chrome (visit counters)
  3 changed   5% of the documents changed in substance
  4 304       nothing changed, the server sends ETag/Last-Modified (after one unmeasured cycle
              that stores them): an unchanged page costs one conditional request
Per phase and tool: wall time, pages/s, CPU seconds (whole process, from wait4) and PolicyWatch's
CPU seconds per page by stage, peak RSS, database bytes added, the changes reported (which must be
exactly the true ones). Then: diff time of a one-character and of a one-paragraph change in a
60,000+ character document, and the peak RSS of a warm cycle over --big-pages pages.
Results: benchmarks/results/<name>-<date>.json, with the machine, the date and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.pages import PROFILES, changed_set
from benchmarks.urlwatch_harness import URLWATCH_VERSION, UrlwatchJobs, ensure_urlwatch

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
RESULTS = ROOT / "benchmarks" / "results"
PHASES = ("cold", "warm", "changed", "304")
STAGES = ("fetch", "extract", "version", "diff", "alert")
CHANGED_FRACTION = 0.05


# --- the site ---------------------------------------------------------------------------------


class Site:
    """benchmarks.site in its own process (its CPU is not the clients')."""

    def __init__(self, pages: int, noise: str = "baseline") -> None:
        self.pages = pages
        self.noise = noise
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.site", "--pages", str(pages), "--noise", noise],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError("the benchmark site did not start")
        self.base_url = f"http://127.0.0.1:{line[1]}"

    def control(self, command: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/_bench/{command}", timeout=30) as resp:
            return json.loads(resp.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# --- one measured process ---------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    phase: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    pages_per_s: float
    changes: int
    db_bytes_added: int | None = None
    stage_cpu_s: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, str, str, int]:
    """(wall s, CPU s user+sys, peak RSS MB, stdout, stderr, exit status) of one child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return wall, cpu, usage.ru_maxrss / 1024, out.read(), err.read(), proc.returncode


def db_bytes(path: Path) -> int:
    """Bytes the SQLite database uses: its pages less the free ones, after a WAL checkpoint (so
    neither a leftover -wal file nor pages freed earlier hide or inflate what a cycle added)."""
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return (pages - free) * size


class PolicyWatchTool:
    name = "policywatch"

    def __init__(self, site: Site, workdir: Path, concurrency: int) -> None:
        self.workdir = workdir
        self.concurrency = concurrency
        self.db = workdir / "policywatch.db"
        self.config = workdir / "sources.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        self.use(site)

    def use(self, site: Site) -> None:
        """Point the configuration at another site (another noise profile)."""
        self.site = site
        concurrency = self.concurrency
        self.config.write_text(
            f"""sources:
  - id: bench
    name: 基准站
    listing_urls: ["{site.base_url}/list/"]
    link_pattern: "/content/"
    min_delay_s: 0
    concurrency: {concurrency}
""",
            encoding="utf-8",
        )

    def fresh(self) -> None:
        for p in (self.db, Path(f"{self.db}-wal"), Path(f"{self.db}-shm")):
            p.unlink(missing_ok=True)

    def run(self, phase: str) -> Run:
        before = db_bytes(self.db)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("POLICYWATCH_SMTP_URL", None)
        cmd = [sys.executable, "-m", "benchmarks.pw_cycle", str(self.config), f"sqlite:///{self.db}"]
        wall, cpu, rss, out, err, code = measure(cmd, env, ROOT)
        if code != 0:
            raise RuntimeError(f"policywatch cycle failed ({code}): {err.strip()[-2000:]}")
        summary = json.loads(out)
        pages = self.site.pages
        stages = {s: summary["stage_seconds"].get(s, 0.0) / pages for s in STAGES if s != "alert"}
        stages["alert"] = summary.get("alert_cpu_s", 0.0) / pages
        return Run(
            tool=self.name,
            phase=phase,
            wall_s=wall,
            cpu_s=cpu,
            peak_rss_mb=rss,
            pages_per_s=pages / wall,
            changes=summary["new"] + summary["changed"] + summary["removed"] + summary["restored"],
            db_bytes_added=db_bytes(self.db) - before,
            stage_cpu_s=stages,
            detail={
                k: summary[k]
                for k in ("baseline", "unchanged", "not_modified", "errors", "import_s", "cycle_s")
                if k in summary
            },
        )


class UrlwatchTool:
    name = "urlwatch"

    def __init__(self, site: Site, workdir: Path) -> None:
        self.site = site
        self.jobs = UrlwatchJobs(ensure_urlwatch(WORK / "urlwatch-venv"), workdir)
        self.jobs.write(site.base_url, site.pages)

    def use(self, site: Site) -> None:
        """Point the jobs at another site (another noise profile)."""
        self.site = site
        self.jobs.write(site.base_url, site.pages)

    def fresh(self) -> None:
        self.jobs.fresh_cache()

    def run(self, phase: str) -> Run:
        before = db_bytes(self.jobs.workdir / "cache.db")
        wall, cpu, rss, out, err, code = measure(self.jobs.command(), dict(os.environ), self.jobs.workdir)
        if code != 0:
            raise RuntimeError(f"urlwatch failed ({code}): {err.strip()[-2000:]}")
        reported = self.jobs.reported(out)
        return Run(
            tool=self.name,
            phase=phase,
            wall_s=wall,
            cpu_s=cpu,
            peak_rss_mb=rss,
            pages_per_s=self.site.pages / wall,
            changes=reported.get("CHANGED", 0) + (reported.get("NEW", 0) if phase != "cold" else 0),
            db_bytes_added=db_bytes(self.jobs.workdir / "cache.db") - before,
            detail={"reported": reported},
        )


# --- the phases -------------------------------------------------------------------------------


def expected_changes(phase: str, pages: int) -> int:
    return len(changed_set(pages, CHANGED_FRACTION, 0)) if phase == "changed" else 0


def run_phases(site: Site, tools: list[Any], reps: int, log: Any) -> list[Run]:
    runs: list[Run] = []
    for rep in range(reps):
        site.control("reset")
        order = tools if rep % 2 == 0 else tools[::-1]  # alternate who goes first
        for tool in tools:
            tool.fresh()
        for phase in PHASES:
            if phase == "changed":
                docs = changed_set(site.pages, CHANGED_FRACTION, rep)
                site.control("change?docs=" + ",".join(map(str, docs)))
            if phase == "304":
                site.control("etag?on=1")
                for tool in order:  # stores the validators; not measured
                    tool.run("prime")
            for tool in order:
                run = tool.run(phase)
                runs.append(run)
                log(
                    f"{site.noise:>11} rep {rep + 1} {phase:>7} {tool.name:<11} {run.wall_s:7.2f} s  {run.pages_per_s:7.1f} pages/s  "
                    f"cpu {run.cpu_s:6.2f} s  rss {run.peak_rss_mb:6.1f} MB  changes {run.changes}"
                )
    return runs


def median_of(runs: list[Run], tool: str, phase: str) -> dict[str, Any]:
    mine = [r for r in runs if r.tool == tool and r.phase == phase]
    if not mine:
        return {}
    med = statistics.median
    out: dict[str, Any] = {
        "runs": len(mine),
        "wall_s": round(med(r.wall_s for r in mine), 3),
        "pages_per_s": round(med(r.pages_per_s for r in mine), 1),
        "cpu_s": round(med(r.cpu_s for r in mine), 3),
        "cpu_ms_per_page": round(1000 * med(r.cpu_s for r in mine) / max(1, _pages(mine)), 3),
        "peak_rss_mb": round(med(r.peak_rss_mb for r in mine), 1),
        "changes_reported": sorted({r.changes for r in mine}),
        "db_bytes_added": med(r.db_bytes_added or 0 for r in mine),
    }
    if mine[0].stage_cpu_s:
        out["stage_cpu_ms_per_page"] = {
            s: round(1000 * med(r.stage_cpu_s.get(s, 0.0) for r in mine), 3) for s in STAGES
        }
    return out


def _pages(runs: list[Run]) -> int:
    r = runs[0]
    return round(r.pages_per_s * r.wall_s)


# --- diff timing and the big warm cycle -------------------------------------------------------


def diff_timings(repeat: int = 15) -> dict[str, Any]:
    from benchmarks.pages import largest_document_paragraphs
    from policywatch.classify import clear_diff_cache, diff_versions
    from policywatch.extraction import normalise_paragraphs
    from storage.models import DocumentVersion

    title, paras = largest_document_paragraphs()

    def version(ps: list[str]) -> DocumentVersion:
        norm = normalise_paragraphs(ps)
        return DocumentVersion(title=title, text="\n".join(ps), normalized_text="\n".join(norm))

    old = version(paras)
    middle = len(paras) // 2
    one_char = list(paras)
    k = len(one_char[middle]) // 2
    one_char[middle] = (
        one_char[middle][:k] + ("五" if one_char[middle][k] != "五" else "六") + one_char[middle][k + 1 :]
    )
    one_para = list(paras)
    one_para.insert(
        middle, "新增条款：各地区要建立数据要素登记制度，在三个月内完成首批登记，并按季度报送进展情况。"
    )
    out: dict[str, Any] = {"document_chars": sum(len(p) for p in paras), "paragraphs": len(paras)}
    for name, new_paras in (("one_character", one_char), ("one_paragraph", one_para)):
        new = version(new_paras)
        times = []
        for _ in range(repeat):
            clear_diff_cache()  # the diff itself, not the cache that spares a cycle recomputing it
            started = time.perf_counter()
            result = diff_versions(old, new)
            times.append(time.perf_counter() - started)
        out[name] = {
            "median_ms": round(1000 * statistics.median(times), 2),
            "min_ms": round(1000 * min(times), 2),
            "changes": len(result.changes),
        }
    return out


def big_warm_cycle(pages: int, log: Any) -> dict[str, Any]:
    site = Site(pages)
    try:
        tool = PolicyWatchTool(site, WORK / f"big-{pages}", concurrency=4)
        tool.fresh()
        cold = tool.run("cold")
        log(f"{pages} pages cold: {cold.wall_s:.1f} s, rss {cold.peak_rss_mb:.1f} MB")
        warm = tool.run("warm")
        log(f"{pages} pages warm: {warm.wall_s:.1f} s, rss {warm.peak_rss_mb:.1f} MB, changes {warm.changes}")
        return {"pages": pages, "cold": asdict(cold), "warm": asdict(warm)}
    finally:
        site.close()
        shutil.rmtree(WORK / f"big-{pages}", ignore_errors=True)  # over a gigabyte of SQLite


# --- machine and output -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(
            next(
                line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
            ).split()[1]
        )
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "git_commit": commit,
        "urlwatch": URLWATCH_VERSION,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PolicyWatch vs urlwatch on a local site")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--big-pages", type=int, default=10000, help="0: skip the big warm cycle")
    parser.add_argument("--concurrency", type=int, default=4, help="PolicyWatch fetch workers")
    parser.add_argument("--no-urlwatch", action="store_true")
    parser.add_argument("--name", default="bench")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="noise profiles, comma-separated")
    parser.add_argument("--quick", action="store_true", help="200 pages, one repetition, no big cycle")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, flush=True)

    if args.quick:
        args.pages, args.reps, args.big_pages = min(args.pages, 200), 1, 0
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = set(profiles) - set(PROFILES)
    if unknown:
        parser.error(f"unknown profiles {sorted(unknown)}; known: {', '.join(PROFILES)}")

    started = datetime.now(UTC)
    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    by_profile: dict[str, Any] = {}
    tools: list[Any] = []
    for profile in profiles:
        site = Site(args.pages, profile)
        try:
            if not tools:
                tools.append(PolicyWatchTool(site, WORK / "policywatch", args.concurrency))
                if not args.no_urlwatch:
                    tools.append(UrlwatchTool(site, WORK / "urlwatch"))
            for tool in tools:
                tool.use(site)
            log(
                f"site: {args.pages} pages at {site.base_url}, noise {profile}; load average {os.getloadavg()}"
            )
            load = os.getloadavg()
            mine = run_phases(site, tools, args.reps, log)
        finally:
            site.close()
        for run in mine:
            run.detail["profile"] = profile
        runs.extend(mine)
        by_profile[profile] = {"load_average": {"before": load, "after": os.getloadavg()}, "phases": {}}
        for phase in PHASES:
            entry = {tool.name: median_of(mine, tool.name, phase) for tool in tools}
            entry["true_changes"] = expected_changes(phase, args.pages) if phase != "cold" else 0
            if entry.get("urlwatch"):
                entry["ratio_pages_per_s"] = round(
                    entry["policywatch"]["pages_per_s"] / entry["urlwatch"]["pages_per_s"], 2
                )
                # Ratio of each repetition (the two tools back to back), for the spread.
                entry["ratio_per_rep"] = [
                    round(p.pages_per_s / u.pages_per_s, 2)
                    for p, u in zip(
                        [r for r in mine if r.tool == "policywatch" and r.phase == phase],
                        [r for r in mine if r.tool == "urlwatch" and r.phase == phase],
                        strict=False,
                    )
                ]
            entry["exact"] = all(
                r.changes == entry["true_changes"] for r in mine if r.phase == phase and phase != "cold"
            )
            by_profile[profile]["phases"][phase] = entry
    load_after_phases = os.getloadavg()

    diff = diff_timings()
    log(
        f"diff of a {diff['document_chars']}-character document: {diff['one_character']['median_ms']} ms (one character), {diff['one_paragraph']['median_ms']} ms (one paragraph)"
    )
    big = big_warm_cycle(args.big_pages, log) if args.big_pages else None

    result = {
        "name": args.name,
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "load_average": {"before": load_before, "after_phases": load_after_phases, "end": os.getloadavg()},
        "settings": {
            "profiles": profiles,
            "pages": args.pages,
            "reps": args.reps,
            "policywatch_concurrency": args.concurrency,
            "urlwatch_workers": 10,
            "changed_fraction": CHANGED_FRACTION,
            "min_delay_s": 0,
            "database": "sqlite",
        },
        "profiles": by_profile,
        "diff": diff,
        "rss_warm_cycle": {
            f"{args.pages}_pages_mb": max(
                by_profile[p]["phases"]["warm"]["policywatch"]["peak_rss_mb"] for p in profiles
            ),
            f"{args.big_pages}_pages_mb": big["warm"]["peak_rss_mb"] if big else None,
            "big": big,
        },
        "runs": [asdict(r) for r in runs],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.name}-{started.strftime('%Y-%m-%d')}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    log(f"\nresults: {path.relative_to(ROOT)}")
    for profile in profiles:
        for phase in PHASES:
            e = by_profile[profile]["phases"][phase]
            pw, uw = e["policywatch"], e.get("urlwatch") or {}
            log(
                f"{profile:>11} {phase:>7}: policywatch {pw['pages_per_s']:7.1f} pages/s "
                f"({pw['cpu_ms_per_page']:.2f} ms CPU/page, changes {pw['changes_reported']}, "
                f"+{pw['db_bytes_added'] / args.pages:.0f} B/page)"
                + (
                    f" | urlwatch {uw['pages_per_s']:7.1f} pages/s ({uw['cpu_ms_per_page']:.2f} ms CPU/page, "
                    f"changes {uw['changes_reported']}) | ratio {e['ratio_pages_per_s']}"
                    if uw
                    else ""
                )
                + f" | true changes {e['true_changes']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
