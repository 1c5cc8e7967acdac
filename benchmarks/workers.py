"""One host, 1,000 documents, 20 ms politeness: Airflow's CeleryExecutor with 1, 2 and 4 workers.

    python -m benchmarks.workers [--pages 1000] [--workers 1,2,4] [--profiles baseline,mixed]
                                 [--delay 0.02] [--name NAME]

For each noise profile (benchmarks.pages: the site's pages carry that profile's noise, drawn anew on
every request) and each worker count, a fresh cluster (tests.support.cluster: PostgreSQL, Redis,
api-server, scheduler, dag-processor, triggerer, N Celery workers of one slot each) runs the source's
DAG twice: `cold` (every document new) and `warm` (`full: true`, every document re-checked). Per
run: the wall time from the run's creation to its end (the metadata database's clock), the time the host was busy (first to last request at
the server), what politeness alone needs (requests × delay), and the intervals between requests as
the server saw them (`under_delay` must be 0), and the CPU the workers used (task start-up
included). Results: benchmarks/results/<name>-<date>.json, with
the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.run import RESULTS, Site, machine
from storage.db import make_engine
from storage.models import Document
from tests.support.cluster import CeleryCluster

DAG = "policywatch_bench"


def config_text(base_url: str, delay_s: float) -> str:
    return f"""sources:
  - id: bench
    name: 基准站点
    listing_urls: ["{base_url}/list/"]
    link_pattern: "/content/"
    min_delay_s: {delay_s}
    schedule: "0 0 1 1 *"
settings:
  first_run_alerts: false
  respect_robots: false
"""


def measure(
    cluster: CeleryCluster, site: Site, delay_s: float, conf: dict[str, Any] | None
) -> dict[str, Any]:
    """cold (`conf` None): the run that unpausing the DAG starts; warm: a triggered one."""
    site.control("gaps?clear=1")
    cpu_before = cluster.worker_cpu_s()
    if conf is None:
        cluster.unpause(f"^{DAG}$")
        run_id = cluster.first_run(DAG)
    else:
        run_id = cluster.trigger(DAG, conf)
    state = cluster.wait_for_run(DAG, run_id, timeout_s=3600)
    wall = cluster.run_seconds(DAG, run_id)
    gaps = site.control(f"gaps?min={delay_s}&clear=1")
    worker_cpu = cluster.worker_cpu_s() - cpu_before
    tasks = cluster.task_states(DAG, run_id)
    batches = [t for t in tasks if t[0].startswith("fetch_and_version") and t[1] >= 0]
    return {
        "state": state,
        "wall_s": round(wall, 1),
        "host_busy_s": gaps["span_s"],
        "documents_span_s": gaps["documents_span_s"],
        "politeness_floor_s": round(gaps["requests"] * delay_s, 1),
        "requests": gaps["requests"],
        "min_gap_s": gaps["min_gap_s"],
        "median_gap_s": gaps["median_gap_s"],
        "under_delay": gaps["under_min"],
        "batches": len(batches),
        "workers_used": sorted({t[3] for t in batches if t[3]}),
        "tasks": len([t for t in tasks if t[2] == "success"]),
        "worker_cpu_s": round(worker_cpu, 1),
        "tries": {f"{t[0]}[{t[1]}]" if t[1] >= 0 else t[0]: t[4] for t in tasks if t[4] > 1},
    }


def run_one(pages: int, workers: int, profile: str, delay_s: float) -> dict[str, Any]:
    site = Site(pages, profile)
    with tempfile.TemporaryDirectory(prefix="pw-workers-") as tmp:
        config = Path(tmp) / "sources.yaml"
        config.write_text(config_text(site.base_url, delay_s), encoding="utf-8")
        cluster = CeleryCluster(Path(tmp) / "airflow", config, workers=workers, concurrency=1)
        try:
            started = time.monotonic()
            cluster.start()
            cluster.wait_for_dags([DAG])
            startup = time.monotonic() - started
            cold = measure(cluster, site, delay_s, None)
            store = make_engine(cluster.store_url)
            with store.connect() as conn:
                documents = conn.execute(select(func.count()).select_from(Document)).scalar_one()
            store.dispose()
            warm = measure(cluster, site, delay_s, {"full": True})
        finally:
            cluster.stop()
            site.close()
    return {
        "profile": profile,
        "workers": workers,
        "startup_s": round(startup, 1),
        "documents": documents,
        "cold": cold,
        "warm": warm,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--profiles", default="baseline,mixed")
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--name", default="workers")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    runs = []
    for profile in args.profiles.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            result = run_one(args.pages, workers, profile, args.delay)
            runs.append(result)
            for phase in ("cold", "warm"):
                r = result[phase]
                print(
                    f"{profile:9} {workers} worker(s) {phase:4}: {r['wall_s']:6.1f} s wall, host busy "
                    f"{r['host_busy_s']:6.1f} s, documents {r['documents_span_s']:6.1f} s (politeness floor "
                    f"{r['politeness_floor_s']:.1f} s), "
                    f"{r['requests']} requests, min gap {r['min_gap_s']} s, {r['under_delay']} under "
                    f"{args.delay} s, {r['batches']} batches on {r['workers_used']}, workers' CPU "
                    f"{r['worker_cpu_s']} s for {r['tasks']} tasks",
                    flush=True,
                )
    report = {
        "benchmark": "workers",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "load_before": load_before, "load_after": os.getloadavg()},
        "pages": args.pages,
        "delay_s": args.delay,
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out}")
    violated = sum(r[p]["under_delay"] for r in runs for p in ("cold", "warm"))
    return 1 if violated else 0


if __name__ == "__main__":
    sys.exit(main())
