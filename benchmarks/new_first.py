"""How soon a new document is seen on a source with many known ones (issue: keep up with real sites).

    python -m benchmarks.new_first [--sizes 200,1000,3000] [--delay 0.02] [--profiles static,counter]

For each size N: a local site with N policy pages (benchmarks.pages: 3-60 KB, gov.cn and GBK
provincial templates), a baseline cycle (no politeness delay, to build the store quickly), then one
new document is published at the top of the listing and one cycle runs with a `--delay` politeness
delay (20 ms). Reported: the seconds from the cycle's start to the new document's event (`new` or
`republished`: the pool of paragraphs makes some pages near-reposts), the cycle's length, and how
many known documents it re-checked. The first build re-checked every known document before any new
one, so its latency was about the whole cycle's length ("known first" below is that: the time the
re-checks take). Runs three modes, for each noise profile: `scheduled` (the default: new first,
then due documents, then early re-checks with what the budget leaves: here every known document),
`strict` (`recheck.early: false`: only due documents, none right after the baseline) and `full`
(`run --full`: every known document, still new first):

- static: the pages are byte-identical on every visit;
- counter: a visit counter in the page changes on every visit (page chrome).

Results: benchmarks/results/new_first-<date>.json, with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from benchmarks.pages import COUNTER_MARK, doc_spec, render
from policywatch.config import parse_config
from policywatch.pipeline import run_cycle
from storage.db import ensure_schema, make_engine, session_factory
from storage.models import ChangeEvent, Document

RESULTS = Path(__file__).resolve().parent / "results"


class Site:
    """N documents and a listing on 127.0.0.1 (new documents at the top), a thread per connection."""

    def __init__(self, count: int, profile: str) -> None:
        self.order = list(range(count))
        self.profile = profile
        self.visits = 0
        self.bodies = {i: (render(doc_spec(i), 0), doc_spec(i).content_type) for i in range(count)}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.visits += 1
                status, kind, body = 404, "text/plain", b"not found"
                if self.path == "/list/":
                    links = "".join(
                        f'<li><a href="{doc_spec(i).path}">{doc_spec(i).title}</a></li>' for i in site.order
                    )
                    body = f'<html><head><meta charset="utf-8"></head><body><ul>{links}</ul></body></html>'.encode()
                    status, kind = 200, "text/html; charset=utf-8"
                elif self.path.startswith("/content/"):
                    index = int(self.path.rsplit("/", 1)[1].split(".")[0])
                    if index in site.bodies:
                        body, kind = site.bodies[index]
                        status = 200
                        if site.profile == "counter":
                            body = body.replace(str(COUNTER_MARK).encode(), str(site.visits).encode())
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, index: int) -> None:
        self.bodies[index] = (render(doc_spec(index), 0), doc_spec(index).content_type)
        self.order.insert(0, index)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_for(site: Site, delay_s: float, early: bool = True) -> Any:
    return parse_config(
        f"""
sources:
  - id: bench
    name: 基准站
    listing_urls: ["{site.url}/list/"]
    link_pattern: "/content/"
    min_delay_s: {delay_s}
    concurrency: 4
    recheck: {{early: {str(early).lower()}}}
settings:
  respect_robots: false
  max_attempts: 1
"""
    )


def baseline_store(site: Site, path: Path) -> float:
    """Record the site's documents as a source's baseline (no politeness delay): its seconds."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        ensure_schema(engine)
        started = time.perf_counter()
        baseline = run_cycle(config_for(site, 0.0), engine)
        assert baseline.errors == 0, baseline.failures[:3]
        return time.perf_counter() - started
    finally:
        engine.dispose()


def measure(site: Site, base: Path, delay_s: float, profile: str, mode: str, workdir: Path) -> dict[str, Any]:
    """One cycle on a copy of the baseline store, after one new document was published."""
    count = len(site.order)
    store = workdir / "run.sqlite"
    shutil.copyfile(base, store)
    site.profile = profile
    site.publish(count)
    engine = make_engine(f"sqlite:///{store}")
    try:
        new_url = f"{site.url}{doc_spec(count).path}"
        cycle_start = datetime.now(UTC)
        started = time.perf_counter()
        summary = run_cycle(config_for(site, delay_s, early=mode != "strict"), engine, full=mode == "full")
        cycle_s = time.perf_counter() - started
        with session_factory(engine)() as session:
            doc_id = session.scalar(select(Document.id).where(Document.url == new_url))
            event = session.scalars(
                select(ChangeEvent).where(ChangeEvent.document_id == doc_id).order_by(ChangeEvent.id)
            ).first()
        latency = (event.detected_at - cycle_start).total_seconds() if event is not None else None
        return {
            "known": count,
            "profile": profile,
            "mode": mode,
            "new_event_kind": event.kind if event is not None else None,
            "new_event_latency_s": round(latency, 2) if latency is not None else None,
            "cycle_s": round(cycle_s, 1),
            "rechecked": summary.rechecked + summary.early,
            "errors": summary.errors,
        }
    finally:
        engine.dispose()
        site.order.remove(count)
        store.unlink()


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="200,1000,3000")
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--profiles", default="static,counter")
    parser.add_argument("--modes", default="scheduled,strict,full")
    parser.add_argument("--tag", default="", help="added to the results file's name")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(s) for s in args.sizes.split(",")):
            site = Site(count, "static")
            base = Path(tmp) / f"baseline-{count}.sqlite"
            try:
                baseline_s = baseline_store(site, base)
                print(f"{count:>5} known: baseline recorded in {baseline_s:.1f} s", flush=True)
                for profile in args.profiles.split(","):
                    for mode in args.modes.split(","):
                        load = round(os.getloadavg()[0], 2)
                        row = measure(site, base, args.delay, profile, mode, Path(tmp))
                        row["load_1m_before"] = load
                        rows.append(row)
                        print(
                            f"{count:>5} known  {profile:<8} {row['mode']:<9}  new event after "
                            f"{row['new_event_latency_s']} s ({row['new_event_kind']}); cycle {row['cycle_s']} s "
                            f"(known first, the new one would have waited about that long), "
                            f"{row['rechecked']} re-checked",
                            flush=True,
                        )
            finally:
                site.close()
    RESULTS.mkdir(exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    out = RESULTS / f"new_first-{datetime.now(UTC):%Y-%m-%d}{tag}.json"
    out.write_text(
        json.dumps({"machine": machine(), "delay_s": args.delay, "rows": rows}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
