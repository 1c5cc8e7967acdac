"""Web app query speed on a large store: 10,000 documents x 5 versions (50,000 versions, 50,000
change events), built directly through storage with bulk inserts, then the history, changes and
search endpoints timed through the real app (FastAPI TestClient: routing, queries, JSON).

    python -m benchmarks.web_bench [--db URL] [--docs 10000] [--versions 5] [--requests 50]

Writes benchmarks/results/web-<date>.json (machine, date, database, build time, medians in ms).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from policywatch.demosite.pages import corpus_paragraphs
from policywatch.extraction import normalise_text
from storage.db import make_engine, upgrade
from storage.models import ChangeEvent, Document, DocumentVersion, FetchAttempt, Source

RESULTS = Path(__file__).resolve().parent / "results"
SOURCES = ("gov-cn", "ndrc", "miit", "jiangxi", "news")
KINDS_AFTER_FIRST = ("changed", "changed", "changed", "changed")
BATCH = 2000


def _texts() -> list[str]:
    paragraphs: list[str] = []
    for name in ("000", "003", "004"):
        paragraphs += [p for p in corpus_paragraphs(name) if len(p) > 20]
    return paragraphs


def build_store(url: str, docs: int, versions: int, seed: int = 7) -> dict[str, Any]:
    """Fill an empty store: every document has `versions` versions, a `new` event and one `changed`
    event per later version; the current version is the last one (the search index follows it)."""
    rng = random.Random(seed)
    engine = make_engine(url)
    upgrade(engine)
    pool = _texts()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(Source), [{"id": s, "name": f"bench {s}", "created_at": start} for s in SOURCES])
        conn.execute(
            insert(Document),
            [
                {
                    "id": i,
                    "source_id": SOURCES[i % len(SOURCES)],
                    "url": f"https://bench.example.cn/{SOURCES[i % len(SOURCES)]}/{i}.html",
                    "status": "active",
                    "title": f"关于印发数字经济发展规划的通知（第{i}号）",
                    "doc_number": f"测发〔2026〕{i}号",
                    "first_seen_at": start,
                }
                for i in range(1, docs + 1)
            ],
        )
    version_id = 0
    current: list[dict[str, int]] = []
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i in range(1, docs + 1):
        base = [pool[(i * 7 + k) % len(pool)] for k in range(6)]
        seen = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        previous = None
        for v in range(versions):
            version_id += 1
            paragraphs = [f"文件{i}第{v + 1}版：数字经济核心产业增加值达到{1000 + i + v}亿元。", *base]
            normalised = [normalise_text(p) for p in paragraphs]
            body = "\n".join(normalised)
            rows.append(
                {
                    "id": version_id,
                    "document_id": i,
                    "content_hash": hashlib.sha256(body.encode()).hexdigest(),
                    "title": f"关于印发数字经济发展规划的通知（第{i}号）",
                    "text": "\n".join(paragraphs),
                    "normalized_text": body,
                    "doc_number": f"测发〔2026〕{i}号",
                    "issuer": "测试部",
                    "published_at": "2026-01-01",
                    "chars": len(body),
                    "url": f"https://bench.example.cn/{SOURCES[i % len(SOURCES)]}/{i}.html",
                    "first_seen_at": seen,
                    "last_seen_at": seen + timedelta(hours=5),
                }
            )
            events.append(
                {
                    "kind": "new" if v == 0 else KINDS_AFTER_FIRST[(v - 1) % len(KINDS_AFTER_FIRST)],
                    "source_id": SOURCES[i % len(SOURCES)],
                    "document_id": i,
                    "url": f"https://bench.example.cn/{SOURCES[i % len(SOURCES)]}/{i}.html",
                    "title": f"关于印发数字经济发展规划的通知（第{i}号）",
                    "old_version_id": previous,
                    "new_version_id": version_id,
                    "detected_at": seen,
                    "relevant": i % 3 != 0,
                    "relevance_terms": ["数字经济"],
                    "significance": 1.0 if v == 0 else round(rng.random(), 3),
                    "summary": "new document" if v == 0 else f"1 change: {1000 + i + v - 1} → {1000 + i + v}",
                    "original_document_id": None,
                }
            )
            previous = version_id
            seen += timedelta(hours=rng.randrange(6, 24 * 10))
        current.append({"b_id": i, "b_version": version_id})
        if len(rows) >= BATCH:
            _flush(engine, rows, events)
    _flush(engine, rows, events)
    with engine.begin() as conn:
        for k in range(0, len(current), BATCH):
            conn.execute(
                text("UPDATE documents SET current_version_id = :b_version WHERE id = :b_id"),
                current[k : k + BATCH],
            )
        indexed = conn.execute(text("SELECT count(*) FROM documents WHERE current_version_id IS NOT NULL"))
        assert indexed.scalar() == docs, "every document must have its current version"
        attempts = [
            {
                "source_id": SOURCES[n % len(SOURCES)],
                "document_id": n % docs + 1,
                "url": f"https://bench.example.cn/{n}",
                "fetched_at": start + timedelta(minutes=n),
                "status": 200 if n % 17 else 503,
                "outcome": "unchanged" if n % 17 else "error",
            }
            for n in range(20_000)
        ]
        conn.execute(insert(FetchAttempt), attempts)
        if engine.dialect.name == "postgresql":
            for table in ("documents", "document_versions", "change_events", "fetch_attempts"):
                conn.execute(text(f"ANALYZE {table}"))
        else:
            conn.execute(text("ANALYZE"))
    built = time.perf_counter() - t0
    engine.dispose()
    return {"build_seconds": round(built, 1), "documents": docs, "versions": version_id}


def _flush(engine: Any, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    if not rows:
        return  # an empty executemany would insert one row of defaults
    with engine.begin() as conn:
        conn.execute(insert(DocumentVersion), rows)
        conn.execute(insert(ChangeEvent), events)
    rows.clear()
    events.clear()


def median_ms(client: Any, paths: Callable[[int], str], requests: int) -> dict[str, float]:
    client.get(paths(0))  # warm the caches once, as a running server would be
    timings = []
    for n in range(requests):
        path = paths(n)
        t = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (path, response.text[:300])
        if "/api/search" in path:
            assert response.json()["items"], (
                f"{path} found nothing: the benchmark would measure an empty search"
            )
    return {
        "median_ms": round(statistics.median(timings), 2),
        "p90_ms": round(sorted(timings)[int(0.9 * len(timings)) - 1], 2),
    }


def measure(url: str, docs: int, requests: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from policywatch.web import create_app

    rng = random.Random(11)
    ids = [rng.randrange(1, docs + 1) for _ in range(requests + 1)]
    engine = make_engine(url)
    cases: dict[str, Callable[[int], str]] = {
        "history /api/documents/{id}/history": lambda n: f"/api/documents/{ids[n]}/history",
        "document page /documents/{id}": lambda n: f"/documents/{ids[n]}",
        "changes /api/changes (newest 50)": lambda n: "/api/changes",
        "changes /api/changes?source&kind&relevant": lambda n: (
            "/api/changes?source=ndrc&kind=changed&relevant=yes"
        ),
        "changes /api/changes?page=200": lambda n: "/api/changes?page=200",
        "changes page /changes": lambda n: "/changes",
        "search /api/search?q=<3+ chars, common>": lambda n: "/api/search?q=数字经济",
        "search /api/search?q=<3+ chars, one document>": lambda n: f"/api/search?q=文件{ids[n]}第",
        "search /api/search?q=<2 chars, LIKE fallback>": lambda n: "/api/search?q=规划",
        "search page /search?q=": lambda n: "/search?q=核心产业增加值",
    }
    with TestClient(create_app(engine)) as client:
        results = {name: median_ms(client, path, requests) for name, path in cases.items()}
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an empty database URL (default: a new SQLite file in a tmp dir)")
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="pw-bench-")
    url = args.db or f"sqlite:///{tmp}/bench.db"
    built = build_store(url, args.docs, args.versions)
    print(f"built {built}", flush=True)
    results = measure(url, args.docs, args.requests)
    engine = make_engine(url)
    dialect = engine.dialect.name
    engine.dispose()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
        "database": dialect,
        "store": built,
        "requests_per_endpoint": args.requests,
        "via": "FastAPI TestClient (in process)",
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = (
        RESULTS
        / f"web-{datetime.now(UTC).date().isoformat()}{'' if dialect == 'sqlite' else '-' + dialect}.json"
    )
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for name, value in results.items():
        print(f"{value['median_ms']:>9.2f} ms  {name}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
