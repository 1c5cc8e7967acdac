"""What a cycle did, in counts: `CycleSummary`, the one report every stage adds its numbers to.

Every part of a cycle (discovery, the version stage, finishing a source, the Airflow tasks that run
those parts one by one) reports into a `CycleSummary`, and the parts' summaries add up to the cycle's.
It is JSON-able (Airflow's XCom carries it between tasks) and it is what `policywatch run` prints and
the dashboard reads. It lives apart from the pipeline so that the stages that fill it in
(policywatch.discovery, policywatch.versioning) need not import the orchestration that imports them.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class CycleSummary:
    sources: int = 0
    documents_seen: int = 0
    fetched: int = 0
    not_modified: int = 0
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    restored: int = 0
    republished: int = 0
    baseline: int = 0
    errors: int = 0
    alerts_sent: int = 0
    alerts_pending: int = 0
    succeeded: int = 0  # documents checked without a fetch error (304s and removals included)
    # Re-check scheduling (policywatch.schedule): known documents due this cycle, those re-checked
    # (planned), those left for a later cycle by the host budget or max_documents, and new URLs left.
    due: int = 0
    rechecked: int = 0
    deferred: int = 0
    new_deferred: int = 0
    early: int = 0  # not due yet, re-checked with what the budget left (recheck.early)
    shrunk: int = 0  # changed pages that lost more than half their text (policywatch.health)
    failures: list[dict[str, str]] = field(default_factory=list)
    # CPU seconds per stage: fetch (the fetch workers' threads), extract, version, diff (classify,
    # events and alert queueing; the processing thread); fetch_wall: summed request wall time.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # Per source: documents, due, rechecked, deferred, fresh_share (checked within their interval
    # when the cycle started), oldest_check_age_s (after it), budget and budget_used per host.
    freshness: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per source: state (up | degraded | down), consecutive_failures, reason, since (policywatch.health).
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The cycle's identity (policywatch.health updates a source once per cycle).
    cycle_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def add(self, other: CycleSummary) -> None:
        for name, value in asdict(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        self.failures.extend(other.failures)
        for source_id, values in other.freshness.items():
            self.freshness.setdefault(source_id, {}).update(values)
        self.health.update(other.health)
        for stage, seconds in other.stage_seconds.items():
            self.time(stage, seconds)

    def time(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def fail(self, source_id: str, url: str, error: str) -> None:
        self.errors += 1
        self.failures.append({"source": source_id, "url": _without_credentials(url), "error": error})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage_seconds"] = {k: round(v, 4) for k, v in self.stage_seconds.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CycleSummary:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _without_credentials(url: str) -> str:
    """A configured URL's user:password@ stays out of summaries, logs and the Airflow UI."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
