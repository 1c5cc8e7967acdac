"""Re-check scheduling at scale: policywatch.schedule's policy against re-checking everything, simulated.

    python -m benchmarks.schedule_sim [--hosts 3000] [--documents 1000000] [--days 14] [--warmup-days 2]
                                      [--delay 2.0] [--schedule @hourly] [--strategies policy,fifo]
                                      [--seed 1] [--name schedule-sim]

A discrete-time simulation in one-hour steps (one cycle per step, `--schedule` hourly) of `--hosts`
hosts holding `--documents` known documents, every host with a politeness delay of `--delay` s,
so a budget of host_budget(delay, 3600) requests per cycle, one of them the listing page.

The world (the same for every strategy, from `--seed`):
  hosts      new documents per day ~ lognormal (median 0.2, σ 1.2: most hosts publish a few a week,
             a few portals tens a day); each host's known documents are its publications over
             the time this rate implies (documents ∝ rate × 1-6 years, scaled to --documents), so host
             sizes are heavy-tailed too; 40% of the hosts answer conditional requests with 304.
  documents  published uniformly over their host's span (the age), new ones as a Poisson process at
             the host's rate during the run. Three kinds of document:
               policy text (85%)   ~0.3 corrections in the first days (rate decaying, τ 2 d), then
                                   once in 20 years;
               news repost (12%)   ~2 edits in the first day or so (τ 1 d), then once in 20 years;
               living page (3%)    ~0.5 early edits, then a steady rate, lognormal around once a
                                   week (σ 1, at most every 6 h): guides, lists, data pages.
             Removed at a rate of once in 8 years; 30% of removals are undone after ~2 days.
  a cycle    reads the page states as of its start; its requests go out one per delay after the
             listing page, so the k-th request of a host sees the page at the start but reports
             k·delay later (that is in the latencies).

Strategies, all within the same per-host budget:
  policy        policywatch.schedule: new documents first, then the due ones, most overdue first
                (next check times from schedule.recheck_interval_s, vectorised here and checked
                against it on random histories before the run), with RecheckPolicy's defaults;
  policy-30d    the same, thriftier: at most 30 days between checks, a request worth 15 min;
  policy-eager  the same, a request worth 1 min of detection delay.
  fifo          "re-check everything every cycle", which cannot finish on a host with more known
                documents than its budget: new documents first, then the known ones in round robin
                (the least recently checked first), as many as the budget allows.
  fifo-known-first  the same with today's order (pipeline.run_source: the known documents, then
                the new ones), where a host over its budget never reaches its new documents.

The policy's documents start with a history as if they had been watched since published (checks
hourly for a week, then every 3 days; changes drawn from their kind's rate) and are spread over their
interval; fifo's start spread over one round. Nothing is measured during the warm-up days.

Reported per strategy: detection latency of new documents, of changes, of removals and restorations
(median, p99: time from the event to the request that saw it; an event not seen by the end is
censored, and a percentile that falls among them is reported as null with `censored`), the share of
documents fresh (stored state = live state, over every document that exists, new ones not yet
fetched counted as stale; at the start of a cycle and after it), requests per host per hour (mean,
p99, max over host-hours), requests per hour in all, and the capacity arithmetic: workers needed,
from a stated CPU cost per kind of request (measured in benchmarks/results/policywatch-vs-urlwatch-
2026-11-23.json) and a stated wall time per request with a number of fetches in flight per worker.
Results: benchmarks/results/<name>-<date>.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from policywatch.schedule import (
    CheckHistory,
    RecheckPolicy,
    document_age_s,
    host_budget,
    recheck_interval_s,
    schedule_interval_s,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HOUR_S = 3600.0
YEAR_H = 365.25 * 24

# CPU per request by outcome, ms (benchmarks/results/policywatch-vs-urlwatch-2026-11-23.json, the
# median of 3 repetitions, whole process, SQLite): cold = a new document read in full; changed; warm
# = a 200 whose text is the same; 304.
CPU_MS = {"new": 55.5, "changed": 8.3, "unchanged": 4.5, "not_modified": 2.7}

KINDS = ("policy text", "news repost", "living page")
KIND_SHARE = (0.85, 0.12, 0.03)
EARLY_CHANGES = (0.3, 2.0, 0.5)  # expected edits in the first days
EARLY_TAU_H = (48.0, 24.0, 48.0)  # their rate decays as exp(-age/τ)
LATE_RATE_H = 1 / (20 * YEAR_H)  # afterwards, for policy texts and reposts
LIVING_MEDIAN_H = 7 * 24.0  # a living page changes about weekly ...
LIVING_SIGMA = 1.0
LIVING_FASTEST_H = 6.0  # ... at most every 6 hours
REMOVAL_RATE_H = 1 / (8 * YEAR_H)
RESTORED_SHARE = 0.3
RESTORE_MEAN_H = 48.0
VALIDATOR_HOSTS = 0.4

CHANGE, REMOVAL, RESTORE = 0, 1, 2

# The policy's variants (RecheckPolicy overrides, as a `recheck:` block would give them).
VARIANTS: dict[str, dict[str, float]] = {
    "policy": {},  # the defaults: μ 5 min, at most 7 days
    "policy-30d": {"max_interval_s": 30 * 86400.0, "request_cost_s": 900.0},  # thriftier
    "policy-eager": {"request_cost_s": 60.0},  # a request is worth a minute of delay
}
BASELINES: dict[str, dict[str, Any]] = {"fifo": {}, "fifo-known-first": {"known_first": True}}


# --- the world ----------------------------------------------------------------------------------


@dataclass
class World:
    hosts: int
    hours: int
    host_of: np.ndarray  # per document
    pub_h: np.ndarray  # publication time, hours from the start (negative: before it)
    kind: np.ndarray
    n_initial: int  # documents [0, n_initial) are known at the start; the rest are published during the run
    validators: np.ndarray  # per host: answers 304
    rate_per_day: np.ndarray  # per host
    ev_doc: np.ndarray  # events, by time
    ev_time: np.ndarray
    ev_kind: np.ndarray
    init_checks: np.ndarray  # the policy's warm start, per initial document
    init_changes: np.ndarray
    init_not_modified: np.ndarray

    @property
    def documents(self) -> int:
        return len(self.pub_h)


def build_world(hosts: int, documents: int, days: int, rng: np.random.Generator) -> World:
    hours = days * 24
    rate = rng.lognormal(math.log(0.2), 1.2, hosts)
    raw = rate * rng.uniform(365, 6 * 365, hosts)
    sizes = rng.multinomial(documents, raw / raw.sum())
    span_days = np.maximum(sizes / rate, 1.0)
    host_initial = np.repeat(np.arange(hosts, dtype=np.int32), sizes)
    pub_initial = -rng.uniform(0, 1, documents) * span_days[host_initial] * 24
    new_counts = rng.poisson(rate * days)
    host_new = np.repeat(np.arange(hosts, dtype=np.int32), new_counts)
    pub_new = rng.uniform(0, hours, len(host_new))
    order = np.argsort(pub_new, kind="stable")  # new documents by publication time
    host_of = np.concatenate([host_initial, host_new[order]])
    pub = np.concatenate([pub_initial, pub_new[order]])
    n = len(pub)
    kind = rng.choice(3, size=n, p=KIND_SHARE).astype(np.int8)
    early = np.array(EARLY_CHANGES)[kind]
    tau = np.array(EARLY_TAU_H)[kind]
    late = np.full(n, LATE_RATE_H)
    living = kind == 2
    late[living] = np.minimum(
        1 / LIVING_FASTEST_H, np.exp(rng.normal(math.log(1 / LIVING_MEDIAN_H), LIVING_SIGMA, living.sum()))
    )

    start = np.maximum(pub, 0.0)
    a0, a1 = start - pub, hours - pub
    e0, e1 = np.exp(-a0 / tau), np.exp(-a1 / tau)
    k_early = rng.poisson(early * (e0 - e1))
    docs_early = np.repeat(np.arange(n), k_early)
    u = rng.uniform(0, 1, len(docs_early))
    de0, de1 = e0[docs_early], e1[docs_early]
    t_early = pub[docs_early] - tau[docs_early] * np.log(de0 - u * (de0 - de1))
    k_late = rng.poisson(late * (hours - start))
    docs_late = np.repeat(np.arange(n), k_late)
    t_late = start[docs_late] + rng.uniform(0, 1, len(docs_late)) * (hours - start[docs_late])
    change_doc = np.concatenate([docs_early, docs_late])
    change_t = np.concatenate([t_early, t_late])

    removed_at = start + rng.exponential(1 / REMOVAL_RATE_H, n)
    restored_at = np.where(
        rng.uniform(0, 1, n) < RESTORED_SHARE, removed_at + rng.exponential(RESTORE_MEAN_H, n), np.inf
    )
    removed = np.nonzero(removed_at < hours)[0]
    restored = removed[restored_at[removed] < hours]
    gone = (change_t >= removed_at[change_doc]) & (change_t < restored_at[change_doc])
    change_doc, change_t = change_doc[~gone], change_t[~gone]  # a removed page does not change

    ev_doc = np.concatenate([change_doc, removed, restored])
    ev_time = np.concatenate([change_t, removed_at[removed], restored_at[restored]])
    ev_kind = np.concatenate(
        [
            np.full(len(change_doc), CHANGE, np.int8),
            np.full(len(removed), REMOVAL, np.int8),
            np.full(len(restored), RESTORE, np.int8),
        ]
    )
    order = np.argsort(ev_time, kind="stable")

    # The policy's warm start: watched since published, hourly for a week, then every 3 days.
    age = -pub_initial
    checks = 1 + np.minimum(age, 168).astype(np.int64) + (np.maximum(0, age - 168) / 72).astype(np.int64)
    k0 = kind[:documents]
    expected = (
        np.array(EARLY_CHANGES)[k0] * (1 - np.exp(-age / np.array(EARLY_TAU_H)[k0])) + late[:documents] * age
    )
    changes = np.minimum(rng.poisson(expected), checks - 1)
    validators = rng.uniform(0, 1, hosts) < VALIDATOR_HOSTS
    not_modified = np.where(validators[host_initial], checks - 1 - changes, 0)
    return World(
        hosts=hosts,
        hours=hours,
        host_of=host_of,
        pub_h=pub,
        kind=kind,
        n_initial=documents,
        validators=validators,
        rate_per_day=rate,
        ev_doc=ev_doc[order],
        ev_time=ev_time[order],
        ev_kind=ev_kind[order],
        init_checks=checks,
        init_changes=changes,
        init_not_modified=not_modified,
    )


# --- the policy, vectorised ---------------------------------------------------------------------


def policy_intervals_s(
    age_s: np.ndarray,
    watched_s: np.ndarray,
    checks: np.ndarray,
    changes: np.ndarray,
    not_modified: np.ndarray,
    removed: np.ndarray,
    removed_checks: np.ndarray,
    p: RecheckPolicy,
) -> np.ndarray:
    """schedule.recheck_interval_s over arrays (the same formulas; `check_vectorised` compares)."""
    low, high = p.min_interval_s, p.max_interval_s
    prior = (p.fresh_age_s / np.maximum(age_s, p.fresh_age_s)) ** p.age_decay / p.prior_change_interval_s
    n = np.maximum(checks - 1, 0).astype(np.float64)
    x = np.minimum(np.maximum(changes, 0), n)
    x_hat = np.where(n > 0, -n * np.log((n - x + 0.5) / (n + 0.5)), 0.0)
    rate = (prior * p.prior_weight_s + x_hat) / (p.prior_weight_s + watched_s)
    interval = np.sqrt(2 * p.request_cost_s / rate)
    share = np.where((n > 0) & (not_modified > 0), np.minimum(not_modified, n) / np.maximum(n, 1), 0.0)
    interval *= 1 + (p.not_modified_factor - 1) * share
    interval = np.minimum(interval, np.maximum(low, age_s - p.fresh_age_s))
    interval = np.clip(interval, low, high)
    interval = np.where(age_s < p.fresh_age_s, low, interval)
    backoff = np.minimum(high, low * 2.0 ** np.minimum(np.maximum(removed_checks, 0), 60))
    return np.where(removed, backoff, interval)


def check_vectorised(policy: RecheckPolicy, rng: np.random.Generator, samples: int = 3000) -> int:
    """The vectorised policy gives schedule.recheck_interval_s's intervals on random histories."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    histories = []
    for _ in range(samples):
        watched = float(rng.uniform(0, 2000))
        checks = int(rng.integers(0, 3000))
        histories.append(
            CheckHistory(
                first_seen_at=now - timedelta(days=watched),
                published_at=(now - timedelta(days=float(rng.uniform(0, 3000)))).date()
                if rng.uniform() < 0.8
                else None,
                last_checked_at=now,
                checks=checks,
                changes=int(rng.integers(0, checks + 2)) if rng.uniform() < 0.5 else 0,
                not_modified=int(rng.integers(0, checks + 1)) if rng.uniform() < 0.4 else 0,
                status="removed" if rng.uniform() < 0.1 else "active",
                removed_checks=int(rng.integers(0, 30)),
                baseline=bool(rng.uniform() < 0.2),
            )
        )
    expected = np.array([recheck_interval_s(h, policy) for h in histories])
    got = policy_intervals_s(
        np.array([document_age_s(h, now, policy) for h in histories]),
        np.array([(now - h.first_seen_at).total_seconds() for h in histories]),
        np.array([h.checks for h in histories]),
        np.array([h.changes for h in histories]),
        np.array([h.not_modified for h in histories]),
        np.array([h.status == "removed" for h in histories]),
        np.array([h.removed_checks for h in histories]),
        policy,
    )
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-6):
        worst = int(np.argmax(np.abs(got - expected)))
        raise AssertionError(
            f"vectorised policy differs: {histories[worst]} {got[worst]} != {expected[worst]}"
        )
    return samples


# --- the strategies -----------------------------------------------------------------------------


@dataclass
class Strategy:
    name: str
    world: World
    budget: int  # document requests per host per cycle (the listing page's already taken off)
    delay_h: float
    policy: RecheckPolicy | None = None  # None: round robin over every known document
    known_first: bool = False
    warmup_h: float = 0.0
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def __post_init__(self) -> None:
        w, n = self.world, self.world.documents
        self.known = np.zeros(n, bool)
        self.known[: w.n_initial] = True
        self.seen_ver = np.zeros(n, np.int32)
        self.seen_gone = np.zeros(n, bool)
        self.first_seen = w.pub_h.copy()
        self.checks = np.zeros(n, np.int64)
        self.changes = np.zeros(n, np.int64)
        self.not_modified = np.zeros(n, np.int64)
        self.removed_checks = np.zeros(n, np.int64)
        self.checks[: w.n_initial] = w.init_checks
        self.changes[: w.n_initial] = w.init_changes
        self.not_modified[: w.n_initial] = w.init_not_modified
        self.last_checked = np.full(n, np.nan)
        self.next_due = np.full(n, np.inf)
        init = np.arange(w.n_initial)
        if self.policy is not None:
            interval_h = self.intervals_h(init, np.zeros(w.n_initial))
            self.last_checked[init] = -self.rng.uniform(0, 1, w.n_initial) * interval_h
            self.next_due[init] = self.last_checked[init] + interval_h
        else:
            per_host = np.bincount(w.host_of[init], minlength=w.hosts)
            rounds_h = np.maximum(1.0, per_host / self.budget)
            self.last_checked[init] = -self.rng.uniform(0, 1, w.n_initial) * rounds_h[w.host_of[init]]
        # measurements
        self.requests_host = np.zeros(w.hosts, np.int64)  # over the measured hours
        self.max_host_hour = 0
        self.host_hours: list[np.ndarray] = []  # per measured hour, requests per host (for p99)
        self.requests_hour: list[int] = []
        self.outcomes = dict.fromkeys(CPU_MS, 0)
        self.fresh_before: list[float] = []
        self.fresh_after: list[float] = []
        self.existing: list[int] = []
        self.deferred_hour: list[int] = []
        self.new_latency: list[np.ndarray] = []
        self.new_found = np.full(n, np.nan)
        self.log_doc: list[np.ndarray] = []
        self.log_state: list[np.ndarray] = []
        self.log_seen: list[np.ndarray] = []

    def intervals_h(self, docs: np.ndarray, at_h: np.ndarray) -> np.ndarray:
        assert self.policy is not None
        w = self.world
        age_s = np.maximum(0.0, at_h - w.pub_h[docs]) * HOUR_S
        watched_s = np.maximum(0.0, at_h - self.first_seen[docs]) * HOUR_S
        return (
            policy_intervals_s(
                age_s,
                watched_s,
                self.checks[docs],
                self.changes[docs],
                self.not_modified[docs],
                self.seen_gone[docs],
                self.removed_checks[docs],
                self.policy,
            )
            / HOUR_S
        )

    def take(self, docs: np.ndarray, key: np.ndarray, room: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per host, the `room[host]` documents of `docs` with the smallest `key`, and their rank."""
        if len(docs) == 0:
            return docs, docs
        hosts = self.world.host_of[docs]
        counts = np.bincount(hosts, minlength=self.world.hosts)
        crowded = counts[hosts] > room[hosts]
        # hosts with room for all: everything, in any order; the others: sorted by host, then key
        easy, hard = docs[~crowded], docs[crowded]
        chosen = [easy]
        ranks = [_rank_within(self.world.host_of[easy], self.world.hosts)]
        if len(hard):
            hard_hosts = self.world.host_of[hard]
            order = np.lexsort((key[crowded], hard_hosts))
            hard, hard_hosts = hard[order], hard_hosts[order]
            rank = _rank_within(hard_hosts, self.world.hosts)
            keep = rank < room[hard_hosts]
            chosen.append(hard[keep])
            ranks.append(rank[keep])
        return np.concatenate(chosen), np.concatenate(ranks)

    def cycle(self, t: float, live_ver: np.ndarray, live_gone: np.ndarray, existing: int) -> None:
        w = self.world
        measured = t > self.warmup_h
        if measured:
            self.fresh_before.append(self.fresh_share(live_ver, existing))
            self.existing.append(existing)
        pending = np.nonzero(~self.known[w.n_initial : existing])[0] + w.n_initial
        if self.policy is not None:
            candidates = np.nonzero(self.known[:existing] & (self.next_due[:existing] <= t))[0]
            key = self.next_due[candidates]
        else:
            candidates = np.nonzero(self.known[:existing])[0]
            key = self.last_checked[candidates]
        full = np.full(w.hosts, self.budget)
        if self.known_first:
            known, known_rank = self.take(candidates, key, full)
            n_known = np.bincount(w.host_of[known], minlength=w.hosts)
            new, new_rank = self.take(pending, w.pub_h[pending], full - n_known)
            n_new = np.bincount(w.host_of[new], minlength=w.hosts)
            new_slot, known_slot = 1 + n_known[w.host_of[new]] + new_rank, 1 + known_rank
        else:
            new, new_rank = self.take(pending, w.pub_h[pending], full)
            n_new = np.bincount(w.host_of[new], minlength=w.hosts)
            known, known_rank = self.take(candidates, key, full - n_new)
            n_known = np.bincount(w.host_of[known], minlength=w.hosts)
            new_slot, known_slot = 1 + new_rank, 1 + n_new[w.host_of[known]] + known_rank
        self.fetch_new(t, new, t + new_slot * self.delay_h, live_ver, live_gone, measured)
        self.recheck(t, known, t + known_slot * self.delay_h, live_ver, live_gone, measured)
        if measured:
            per_host = 1 + n_new + n_known  # the listing page, then the documents
            self.requests_host += per_host
            self.max_host_hour = max(self.max_host_hour, int(per_host.max()))
            self.host_hours.append(per_host.astype(np.int32))
            self.requests_hour.append(int(per_host.sum()))
            self.deferred_hour.append(len(candidates) - len(known) if self.policy is not None else 0)
            self.fresh_after.append(self.fresh_share(live_ver, existing))

    def fresh_share(self, live_ver: np.ndarray, existing: int) -> float:
        fresh = self.known[:existing] & (self.seen_ver[:existing] == live_ver[:existing])
        return float(fresh.mean())

    def fetch_new(self, t, docs, seen_at, live_ver, live_gone, measured) -> None:
        self.known[docs] = True
        self.first_seen[docs] = seen_at
        self.seen_ver[docs] = live_ver[docs]
        self.seen_gone[docs] = live_gone[docs]
        self.checks[docs] = 1
        self.last_checked[docs] = seen_at
        self.new_found[docs] = seen_at
        self._log(docs, t, seen_at)
        if measured:
            self.outcomes["new"] += len(docs)
        if self.policy is not None:
            self.next_due[docs] = seen_at + self.intervals_h(docs, seen_at)

    def recheck(self, t, docs, seen_at, live_ver, live_gone, measured) -> None:
        w = self.world
        changed = live_ver[docs] != self.seen_ver[docs]
        self._log(docs[changed], t, seen_at[changed])
        was_gone, now_gone = self.seen_gone[docs], live_gone[docs]
        still_gone = was_gone & now_gone
        self.removed_checks[docs[still_gone]] += 1
        self.removed_checks[docs[~was_gone & now_gone]] = 0
        counted = ~now_gone
        self.checks[docs[counted]] += 1
        content_change = counted & ~was_gone & changed
        self.changes[docs[content_change]] += 1
        unchanged = counted & ~changed
        nm = unchanged & w.validators[w.host_of[docs]]
        self.not_modified[docs[nm]] += 1
        if measured:
            self.outcomes["changed"] += int(changed.sum())
            self.outcomes["not_modified"] += int(nm.sum()) + int(still_gone.sum())
            self.outcomes["unchanged"] += int((unchanged & ~nm).sum())
        self.seen_ver[docs] = live_ver[docs]
        self.seen_gone[docs] = now_gone
        self.last_checked[docs] = seen_at
        if self.policy is not None:
            self.next_due[docs] = seen_at + self.intervals_h(docs, seen_at)

    def _log(self, docs, t, seen_at) -> None:
        if len(docs):
            self.log_doc.append(docs)
            self.log_state.append(np.full(len(docs), t))
            self.log_seen.append(seen_at)


def _rank_within(hosts: np.ndarray, n_hosts: int) -> np.ndarray:
    """Each element's position among the elements of its host (elements grouped by host or not)."""
    if len(hosts) == 0:
        return hosts.astype(np.int64)
    order = np.argsort(hosts, kind="stable")
    sorted_hosts = hosts[order]
    starts = np.cumsum(np.bincount(sorted_hosts, minlength=n_hosts)) - np.bincount(
        sorted_hosts, minlength=n_hosts
    )
    rank = np.empty(len(hosts), np.int64)
    rank[order] = np.arange(len(hosts)) - starts[sorted_hosts]
    return rank


# --- the run ------------------------------------------------------------------------------------


def simulate(world: World, strategies: list[Strategy], log) -> None:
    live_ver = np.zeros(world.documents, np.int32)
    live_gone = np.zeros(world.documents, bool)
    new_pub = world.pub_h[world.n_initial :]
    cursor = 0
    for step in range(1, world.hours + 1):
        t = float(step)
        end = int(np.searchsorted(world.ev_time, t, side="right"))
        docs, kinds = world.ev_doc[cursor:end], world.ev_kind[cursor:end]
        cursor = end
        np.add.at(live_ver, docs, 1)
        live_gone[docs[kinds == REMOVAL]] = True
        live_gone[docs[kinds == RESTORE]] = False
        existing = world.n_initial + int(np.searchsorted(new_pub, t, side="right"))
        for strategy in strategies:
            strategy.cycle(t, live_ver, live_gone, existing)
        if step % 24 == 0:
            log(f"day {step // 24}/{world.hours // 24}")


def percentiles(values: np.ndarray, censored_at: float) -> dict[str, Any]:
    """Median and p99 of latencies in hours (inf: not seen by the end of the run)."""
    if len(values) == 0:
        return {"events": 0}
    out: dict[str, Any] = {"events": len(values), "seen": round(float(np.isfinite(values).mean()), 4)}
    for name, q in (("median_h", 50), ("p90_h", 90), ("p99_h", 99)):
        v = float(np.percentile(values, q, method="inverted_cdf"))
        out[name] = round(v, 2) if math.isfinite(v) else None
        if not math.isfinite(v):
            out.setdefault(
                "censored",
                f"the percentile falls among events not seen within the run (> {censored_at:.0f} h)",
            )
    finite = values[np.isfinite(values)]
    out["mean_seen_h"] = round(float(finite.mean()), 2) if len(finite) else None
    return out


def latencies(world: World, s: Strategy, warmup_h: float, tail_h: float) -> dict[str, Any]:
    """Latencies of the events between the warm-up and `tail_h` before the end (so an event not
    seen by the end went unseen for at least `tail_h`)."""
    log_doc = np.concatenate(s.log_doc) if s.log_doc else np.zeros(0, np.int64)
    log_state = np.concatenate(s.log_state) if s.log_state else np.zeros(0)
    log_seen = np.concatenate(s.log_seen) if s.log_seen else np.zeros(0)
    span = world.hours + 10.0
    log_key = log_doc * span + log_state
    order = np.argsort(log_key)
    log_key, log_seen, log_doc = log_key[order], log_seen[order], log_doc[order]
    out: dict[str, Any] = {}
    last = world.hours - tail_h
    measured = (world.ev_time > warmup_h) & (world.ev_time <= last)
    for kind, name in ((CHANGE, "change"), (REMOVAL, "removal"), (RESTORE, "restoration")):
        pick = measured & (world.ev_kind == kind)
        docs, when = world.ev_doc[pick], world.ev_time[pick]
        idx = np.searchsorted(log_key, docs * span + when, side="left")
        ok = idx < len(log_key)
        ok[ok] &= log_doc[idx[ok]] == docs[ok]
        lat = np.full(len(docs), np.inf)
        lat[ok] = log_seen[idx[ok]] - when[ok]
        out[name] = percentiles(lat, tail_h)
        if kind == CHANGE:
            by_kind = {}
            for k, label in enumerate(KINDS):
                sel = world.kind[docs] == k
                by_kind[label] = percentiles(lat[sel], tail_h)
            out["change_by_kind"] = by_kind
    new = np.arange(world.n_initial, world.documents)
    new = new[(world.pub_h[new] > warmup_h) & (world.pub_h[new] <= last)]
    lat_new = np.where(np.isnan(s.new_found[new]), np.inf, s.new_found[new] - world.pub_h[new])
    out["new"] = percentiles(lat_new, tail_h)
    return out


def capacity(
    requests_per_hour: float, outcomes: dict[str, int], wall_s: float, in_flight: int
) -> dict[str, Any]:
    total = sum(outcomes.values())
    cpu_ms = sum(CPU_MS[k] * v for k, v in outcomes.items()) / total if total else 0.0
    per_worker_cpu = 3_600_000 / cpu_ms if cpu_ms else math.inf
    per_worker_io = in_flight * 3600 / wall_s
    per_worker = min(per_worker_cpu, per_worker_io)
    return {
        "requests_per_hour": round(requests_per_hour),
        "requests_per_s": round(requests_per_hour / 3600, 2),
        "mix": {k: round(v / total, 4) for k, v in outcomes.items()} if total else {},
        "cpu_ms_per_request": round(cpu_ms, 2),
        "cpu_cores_busy": round(requests_per_hour * cpu_ms / 3_600_000, 2),
        "worker": f"one process (one core), {in_flight} fetches in flight, {wall_s} s wall per request",
        "requests_per_worker_hour": round(per_worker),
        "bound_by": "cpu" if per_worker_cpu < per_worker_io else "fetches in flight",
        "workers_needed": math.ceil(requests_per_hour / per_worker) if requests_per_hour else 0,
    }


def summarise(world: World, s: Strategy, args: argparse.Namespace) -> dict[str, Any]:
    hours = len(s.requests_hour)
    per_host_hour = np.stack(s.host_hours) if s.host_hours else np.zeros((1, world.hosts))
    per_hour = np.array(s.requests_hour, dtype=float)
    result: dict[str, Any] = {
        "latency": latencies(world, s, args.warmup_days * 24, args.tail_days * 24),
        "fresh_share": {
            "cycle_start": round(float(np.mean(s.fresh_before)), 4),
            "after_cycle": round(float(np.mean(s.fresh_after)), 4),
            "min_cycle_start": round(float(np.min(s.fresh_before)), 4),
            "stale_documents_cycle_start": round(
                float(np.mean((1 - np.array(s.fresh_before)) * np.array(s.existing)))
            ),
        },
        "requests_per_host_hour": {
            "mean": round(float(per_host_hour.mean()), 2),
            "median": round(float(np.median(per_host_hour)), 1),
            "p99": round(float(np.percentile(per_host_hour, 99)), 1),
            "max": int(per_host_hour.max()),
            "busiest_host_mean": round(float(s.requests_host.max() / max(hours, 1)), 1),
        },
        "requests_per_hour": {"mean": round(float(per_hour.mean())), "max": int(per_hour.max())},
        "outcomes": dict(s.outcomes),
        "capacity": capacity(float(per_hour.mean()), s.outcomes, args.request_wall_s, args.in_flight),
        "capacity_peak_hour": capacity(
            float(per_hour.max()), s.outcomes, args.request_wall_s, args.in_flight
        ),
    }
    if s.policy is not None:
        result["deferred_per_hour"] = {
            "mean": round(float(np.mean(s.deferred_hour)), 1),
            "max": int(np.max(s.deferred_hour)),
        }
    return result


def world_summary(world: World, budget: int) -> dict[str, Any]:
    sizes = np.bincount(world.host_of[: world.n_initial], minlength=world.hosts)
    new = np.bincount(world.host_of[world.n_initial :], minlength=world.hosts)
    kinds = np.bincount(world.ev_kind, minlength=3)
    over = sizes > budget
    return {
        "documents_at_start": int(world.n_initial),
        "documents_published_during_run": int(world.documents - world.n_initial),
        "host_documents": {
            "median": int(np.median(sizes)),
            "p90": int(np.percentile(sizes, 90)),
            "p99": int(np.percentile(sizes, 99)),
            "max": int(sizes.max()),
        },
        "hosts_over_budget": int(over.sum()),
        "documents_on_hosts_over_budget": int(sizes[over].sum()),
        "new_per_host_day": {
            "median": round(float(np.median(world.rate_per_day)), 2),
            "mean": round(float(world.rate_per_day.mean()), 2),
            "max": round(float(world.rate_per_day.max()), 1),
            "busiest_host_in_run": round(float(new.max() / (world.hours / 24)), 1),
        },
        "events": {
            "changes": int(kinds[CHANGE]),
            "removals": int(kinds[REMOVAL]),
            "restorations": int(kinds[RESTORE]),
        },
        "hosts_answering_304": int(world.validators.sum()),
    }


def fmt(value: Any, censored: str = "censored") -> str:
    if value is None:
        return censored
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(results: dict[str, dict[str, Any]], tail_h: float) -> str:
    """The main figures, one column per strategy ("> N h": the percentile was not seen within the run)."""
    rows = [
        ("new: median h", ("latency", "new", "median_h")),
        ("new: p99 h", ("latency", "new", "p99_h")),
        ("new: seen in run", ("latency", "new", "seen")),
        ("change: median h", ("latency", "change", "median_h")),
        ("change: p90 h", ("latency", "change", "p90_h")),
        ("change: p99 h", ("latency", "change", "p99_h")),
        ("change: seen in run", ("latency", "change", "seen")),
        ("  policy text: median h", ("latency", "change_by_kind", "policy text", "median_h")),
        ("  policy text: p90 h", ("latency", "change_by_kind", "policy text", "p90_h")),
        ("  news repost: p99 h", ("latency", "change_by_kind", "news repost", "p99_h")),
        ("  living page: median h", ("latency", "change_by_kind", "living page", "median_h")),
        ("  living page: p99 h", ("latency", "change_by_kind", "living page", "p99_h")),
        ("removal: median h", ("latency", "removal", "median_h")),
        ("removal: p90 h", ("latency", "removal", "p90_h")),
        ("removal: seen in run", ("latency", "removal", "seen")),
        ("restoration: median h", ("latency", "restoration", "median_h")),
        ("fresh at cycle start", ("fresh_share", "cycle_start")),
        ("fresh after cycle", ("fresh_share", "after_cycle")),
        ("stale docs (cycle start)", ("fresh_share", "stale_documents_cycle_start")),
        ("req/host/h: mean", ("requests_per_host_hour", "mean")),
        ("req/host/h: p99", ("requests_per_host_hour", "p99")),
        ("req/host/h: max", ("requests_per_host_hour", "max")),
        ("requests/hour (all)", ("requests_per_hour", "mean")),
        ("CPU ms/request", ("capacity", "cpu_ms_per_request")),
        ("CPU cores busy", ("capacity", "cpu_cores_busy")),
        ("workers needed", ("capacity", "workers_needed")),
        ("workers, peak hour", ("capacity_peak_hour", "workers_needed")),
    ]
    names = list(results)
    width = 26
    lines = [f"{'':<{width}}" + "".join(f"{n:>17}" for n in names)]
    for label, path in rows:
        cells = []
        for n in names:
            value: Any = results[n]
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, float) and "fresh" in label:
                text = f"{value:.4f}"
            else:
                text = fmt(value, f"> {tail_h:.0f} h")
            cells.append(f"{text:>17}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3000)
    parser.add_argument("--documents", type=int, default=1_000_000, help="known at the start")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--warmup-days", type=int, default=2, help="not measured (default 2)")
    parser.add_argument(
        "--tail-days",
        type=int,
        default=2,
        help="events this close to the end: no latency measured (default 2)",
    )
    parser.add_argument("--delay", type=float, default=2.0, help="politeness delay per host, s")
    parser.add_argument("--schedule", default="@hourly", help="the cycle (the simulation steps hourly)")
    parser.add_argument("--request-wall-s", type=float, default=1.0, help="wall time of one request, s")
    parser.add_argument("--in-flight", type=int, default=16, help="fetches in flight per worker")
    parser.add_argument(
        "--strategies",
        default=",".join([*VARIANTS, *BASELINES]),
        help=f"some of {', '.join([*VARIANTS, *BASELINES])}",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--name", default="schedule-sim")
    args = parser.parse_args(argv)
    if schedule_interval_s(args.schedule) != HOUR_S:
        parser.error("the simulation steps one hour: --schedule must be hourly")

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    rng = np.random.default_rng(args.seed)
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS and n not in BASELINES]
    if unknown:
        parser.error(f"unknown strategies {unknown}")
    policies = {n: RecheckPolicy.for_schedule(args.schedule, **VARIANTS[n]) for n in names if n in VARIANTS}
    for policy in policies.values():
        check_vectorised(policy, rng)
    log(f"vectorised policies = schedule.recheck_interval_s on random histories ({', '.join(policies)})")
    world = build_world(args.hosts, args.documents, args.days, rng)
    budget = host_budget(args.delay, schedule_interval_s(args.schedule)) - 1  # the listing page
    summary = world_summary(world, budget)
    log(f"world: {json.dumps(summary)}")
    delay_h = args.delay / HOUR_S
    warmup_h = args.warmup_days * 24.0
    options: dict[str, dict[str, Any]] = {n: {"policy": p} for n, p in policies.items()} | BASELINES
    strategies = [
        Strategy(
            name,
            world,
            budget,
            delay_h,
            warmup_h=warmup_h,
            rng=np.random.default_rng(args.seed + 1),
            **options[name],
        )
        for name in names
    ]
    simulate(world, strategies, log)
    results = {s.name: summarise(world, s, args) for s in strategies}
    elapsed = time.perf_counter() - started
    report = {
        "name": args.name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.schedule_sim "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "elapsed_s": round(elapsed, 1),
        "settings": {
            "hosts": args.hosts,
            "documents": args.documents,
            "days": args.days,
            "warmup_days": args.warmup_days,
            "tail_days": args.tail_days,
            "delay_s": args.delay,
            "schedule": args.schedule,
            "budget_per_host_cycle": budget + 1,
            "document_requests_per_host_cycle": budget,
            "seed": args.seed,
            "policies": {n: asdict(p) for n, p in policies.items()},
            "cpu_ms_per_request": CPU_MS,
            "request_wall_s": args.request_wall_s,
            "in_flight_per_worker": args.in_flight,
            "model": {
                "kinds": dict(zip(KINDS, KIND_SHARE, strict=True)),
                "early_changes": dict(zip(KINDS, EARLY_CHANGES, strict=True)),
                "early_tau_h": dict(zip(KINDS, EARLY_TAU_H, strict=True)),
                "late_change_every_years": 20,
                "living_change_every_h": {
                    "median": LIVING_MEDIAN_H,
                    "sigma": LIVING_SIGMA,
                    "fastest": LIVING_FASTEST_H,
                },
                "removal_every_years": 8,
                "restored_share": RESTORED_SHARE,
                "restore_mean_h": RESTORE_MEAN_H,
                "hosts_answering_304": VALIDATOR_HOSTS,
            },
        },
        "world": summary,
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}-{datetime.now(UTC).date().isoformat()}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(table(results, args.tail_days * 24))
    log(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
