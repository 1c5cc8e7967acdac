"""One PolicyWatch cycle as its own process, for the benchmark: what `policywatch run` does, plus
the alert stage's CPU time (queueing and delivery are timed here, from outside the pipeline).

    python -m benchmarks.pw_cycle CONFIG DATABASE_URL      prints the cycle summary as JSON
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def _timed(func: Callable[..., Any], totals: dict[str, float], stage: str) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            totals[stage] = totals.get(stage, 0.0) + time.thread_time() - started

    return wrapper


def main(argv: list[str]) -> int:
    config_path, database_url = argv
    started = time.perf_counter()
    from policywatch import pipeline
    from policywatch.config import load_config
    from storage.db import make_engine

    imported = time.perf_counter()
    alert_cpu: dict[str, float] = {}
    pipeline.DocumentProcessor._queue_alerts = _timed(  # type: ignore[method-assign]
        pipeline.DocumentProcessor._queue_alerts, alert_cpu, "alert"
    )
    pipeline.deliver_after_cycle = _timed(pipeline.deliver_after_cycle, alert_cpu, "alert")
    engine = make_engine(database_url)
    summary = pipeline.run_cycle(load_config(config_path), engine)
    engine.dispose()
    data = summary.to_json()
    data["alert_cpu_s"] = round(alert_cpu.get("alert", 0.0), 4)
    data["import_s"] = round(imported - started, 3)
    data["cycle_s"] = round(time.perf_counter() - imported, 3)
    data["failures"] = data["failures"][:5]
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
