"""How much work the web app takes on at once: worker processes, requests per process (each holds
one database connection), the waiting line in front of them, and the bounds of diff computation.

Sized for the machine: one uvicorn worker process per core (Python runs one request's Python at a
time per process), a few requests at once per process (a query waits on the database, not only on
Python), and a short line: a request that cannot start within `queue_wait_s` is answered 503 with
Retry-After at once, instead of waiting minutes for a connection and timing out. Each value can be
set from the environment (POLICYWATCH_WEB_*), for the standalone server and inside Airflow alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WebLimits:
    workers: int  # uvicorn worker processes of `policywatch web`
    concurrency: int  # requests handled at once by one process (= its database connections)
    queue: int  # requests waiting for one of those slots, per process; more are answered 503
    queue_wait_s: float  # the longest a request waits for a slot before it is answered 503
    retry_after_s: int  # Retry-After of those 503s
    diff_wait_s: float  # the longest a request waits for a diff being computed (then 503)
    diff_threads: int = 1  # threads computing diffs, per process (never the request threads)
    diff_pending: int = 2  # distinct diffs computing or waiting for a thread, per process
    diff_waiters: int = 64  # requests waiting for diffs, per process
    # Cached diffs, counted by the characters of both texts: a diff with its page rows holds 4-14
    # bytes per character (a 3.4 MiB document changed throughout: 34 MB), so at most ~110 MB.
    diff_cache_chars: int = 8_000_000
    diff_cache_entries: int = 512

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebLimits:
        env = os.environ if environ is None else environ
        n = cores()
        concurrency = _int(env, "POLICYWATCH_WEB_CONCURRENCY", 4, 1)
        return cls(
            workers=_int(env, "POLICYWATCH_WEB_WORKERS", n, 1),
            concurrency=concurrency,
            queue=_int(env, "POLICYWATCH_WEB_QUEUE", 8 * concurrency, 0),
            queue_wait_s=_float(env, "POLICYWATCH_WEB_QUEUE_WAIT", 0.5),
            retry_after_s=_int(env, "POLICYWATCH_WEB_RETRY_AFTER", 1, 1),
            diff_wait_s=_float(env, "POLICYWATCH_WEB_DIFF_WAIT", 10.0),
        )


def _int(env: Mapping[str, str], name: str, default: int, least: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: not a whole number: {raw!r}") from None
    if value < least:
        raise ValueError(f"{name}: at least {least}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: not a number of seconds: {raw!r}") from None
    if not 0 < value < 3600:
        raise ValueError(f"{name}: between 0 and 3600 seconds, got {raw}")
    return value
