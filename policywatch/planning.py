"""What one cycle of a source checks, in which order: new documents first, then the known ones due.

The glue between the store's view of the documents (`storage.store.KnownDocument`) and the pure
re-check policy and budgets of policywatch.schedule. No database and no network here: the pipeline
gives what it read and gets the checks to make, in order, with what was left for later.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from policywatch.config import Config, SourceConfig
from policywatch.observe import Target
from policywatch.schedule import (
    CheckHistory,
    RecheckPolicy,
    host_budget,
    plan_checks,
    recheck_interval_s,
    schedule_interval_s,
)
from storage.store import KnownDocument


def url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def check_history(doc: KnownDocument, baseline_at: datetime | None) -> CheckHistory:
    """The schedule's view of a stored document."""
    first_seen = doc.first_seen_at or datetime.now(UTC)
    published = None
    if doc.published_at:
        try:
            published = date.fromisoformat(doc.published_at[:10])
        except ValueError:
            published = None
    return CheckHistory(
        first_seen_at=first_seen,
        published_at=published,
        last_checked_at=doc.last_checked_at,
        checks=max(1, doc.checks),
        changes=doc.changes,
        not_modified=doc.not_modified_checks,
        status="removed" if doc.status == "removed" else "active",
        removed_checks=doc.removed_checks,
        # Recorded by the source's baseline crawl (the archive as it was when watching began).
        baseline=baseline_at is None or _utc(first_seen) <= _utc(baseline_at),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def sources_per_host(config: Config) -> Counter[str]:
    """How many configured sources fetch from each host: they share its budget."""
    counts: Counter[str] = Counter()
    for source in config.sources:
        counts.update(set(source.fetch_hosts))
    return counts


def source_host_budget(source: SourceConfig, config: Config, host: str) -> int:
    """Requests this source may send `host` in one cycle.

    `recheck.budget` if set; else what the politeness delay lets the host answer in
    `budget_fraction` (80%) of the schedule's interval (policywatch.schedule.host_budget), shared
    evenly by the configured sources that fetch from the host (their DAGs run independently, so
    each gets a fixed share rather than whatever the others left).
    """
    if source.recheck.budget is not None:
        return source.recheck.budget
    fraction = source.recheck.budget_fraction or 0.8
    whole = host_budget(source.min_delay_s, schedule_interval_s(source.schedule), usable_fraction=fraction)
    return max(1, whole // max(1, sources_per_host(config)[host]))


@dataclass
class CheckSchedule:
    """One cycle's checks of one source, in order, and what it left for later."""

    # The possible moves (pairs: the document's target, then the new URL's), the documents that
    # just dropped off the listing (`first`), then the new URLs.
    new: list[Target]
    due: list[Target]  # known documents due, most overdue first
    new_deferred: list[str]  # new URLs over the budget: first in line next cycle
    due_count: int = 0  # known documents due (checked now or deferred)
    deferred: int = 0  # known documents due but over the budget
    not_due: int = 0
    documents: int = 0  # known documents (active and removed)
    fresh: int = 0  # known documents whose last check is within their re-check interval
    early: int = 0  # documents not due yet, re-checked with what the budget left (recheck.early)
    oldest_overdue_s: float = 0.0
    budgets: dict[str, int] = field(default_factory=dict)  # host -> requests allowed this cycle
    used: dict[str, int] = field(default_factory=dict)  # host -> requests planned (listings included)


def schedule_checks(
    source: SourceConfig,
    config: Config,
    *,
    pairs: Sequence[tuple[Target, Target]],
    first: Sequence[Target] = (),
    new_urls: Sequence[str],
    known: Mapping[int, tuple[Target, KnownDocument]],
    baseline_at: datetime | None,
    listing_requests: Mapping[str, int],
    now: datetime,
    full: bool = False,
) -> CheckSchedule:
    """New documents first (the possible moves, then the new URLs, in the listing's order), then the
    known documents that are due, most overdue first, per host within its budget (less what reading
    the listings took), then, with what the budget leaves (`recheck.early`, on by default), the
    documents that have waited the largest share of their interval; all within `max_documents` fetches. `full`: every known document, no
    budget (an operator's forced re-check; the benchmarks use it to stay comparable)."""
    policy: RecheckPolicy = source.recheck_policy
    due_at: dict[int, datetime | None] = {}
    # The share of its interval a document has waited: early re-checks go to the largest first, so
    # they rotate through the documents instead of returning to those with the shortest intervals.
    waited: dict[int, float] = {}
    fresh = 0
    for doc_id, (_, doc) in known.items():
        if doc.last_checked_at is None:
            due_at[doc_id] = None
            continue
        history = check_history(doc, baseline_at)
        interval = recheck_interval_s(history, policy)
        last = _utc(doc.last_checked_at)
        due_at[doc_id] = last + timedelta(seconds=interval)
        waited[doc_id] = (now - last).total_seconds() / interval
        if due_at[doc_id] > now:  # type: ignore[operator]
            fresh += 1

    hosts = set(listing_requests)
    items_by_host: dict[str, list[object]] = {}
    for pair in pairs:
        host = url_host(pair[1].url)
        items_by_host.setdefault(host, []).append(pair)
    for target in first:
        items_by_host.setdefault(url_host(target.url), []).append(target)
    for url in new_urls:
        items_by_host.setdefault(url_host(url), []).append(url)
    known_by_host: dict[str, list[tuple[int, datetime | None]]] = {}
    for doc_id, (target, _) in known.items():
        known_by_host.setdefault(url_host(target.url), []).append((doc_id, due_at[doc_id]))
    hosts |= set(items_by_host) | set(known_by_host)

    early = source.recheck.early is not False
    chosen_new: list[object] = []
    chosen_due: list[tuple[datetime | None, int]] = []
    early_due: list[tuple[datetime, int]] = []
    left_new: list[str] = []
    schedule = CheckSchedule(new=[], due=[], new_deferred=[], documents=len(known), fresh=fresh)
    for host in sorted(hosts):
        items = items_by_host.get(host, [])
        # The listing pages read on this host, and its robots.txt (read once per fetcher: once per
        # cycle from the CLI, once per task under Airflow, where a batch of 200 adds one request).
        spent = listing_requests.get(host, 0) + (1 if config.settings.respect_robots else 0)
        budget = 0 if full else source_host_budget(source, config, host)  # full: plan_checks ignores it
        # A pair costs two requests: plan_checks counts items, so the pairs' second requests come
        # off the budget first.
        pair_count = sum(1 for item in items if isinstance(item, tuple))
        room_items = max(0, budget - spent - pair_count)
        plan = plan_checks(items, known_by_host.get(host, []), now, room_items, full=full)
        taken_pairs = sum(1 for item in plan.new if isinstance(item, tuple))
        chosen_new += plan.new
        left_new += [i for i in items[len(plan.new) :] if isinstance(i, str)]
        chosen_due += [(due_at[i], i) for i in plan.due]
        spare = 0 if full or not early else room_items - plan.requests
        if spare > 0:
            # What the budget leaves goes to the documents due soonest: a small source is re-checked
            # whole every cycle, as before; a large one gets its due documents first.
            waiting = [
                (-waited[i], i, t) for i, t in known_by_host.get(host, []) if t is not None and t > now
            ]
            ahead = heapq.nsmallest(spare, waiting)
            early_due += [(t, i) for _, i, t in ahead]
            schedule.early += len(ahead)
        else:
            ahead = []
        schedule.due_count += len(plan.due) + plan.deferred
        schedule.deferred += plan.deferred
        schedule.not_due += plan.not_due
        schedule.oldest_overdue_s = max(schedule.oldest_overdue_s, plan.oldest_overdue_s)
        if not full:
            schedule.budgets[host] = budget
        schedule.used[host] = spent + plan.requests + taken_pairs + len(ahead)
    # Hosts were planned one by one: the known documents go most overdue first across them.
    chosen_due.sort(key=lambda item: (-math.inf if item[0] is None else item[0].timestamp(), item[1]))
    chosen_due += sorted(early_due, key=lambda item: (-waited[item[1]], item[1]))

    if source.max_documents is not None and not full:
        # A cap on fetches per cycle: new documents first, then the most overdue.
        cap = source.max_documents
        kept_new: list[object] = []
        for item in chosen_new:
            cost = 2 if isinstance(item, tuple) else 1
            if cap >= cost:
                kept_new.append(item)
                cap -= cost
            elif isinstance(item, str):
                left_new.append(item)
        kept = chosen_due[: max(0, cap)]
        dropped = chosen_due[len(kept) :]
        late = sum(1 for t, _ in dropped if t is None or t <= now)  # due ones: deferred
        schedule.deferred += late
        schedule.early -= len(dropped) - late
        chosen_due = kept
        chosen_new = kept_new

    for item in chosen_new:
        if isinstance(item, tuple):
            schedule.new += list(item)  # the document's own target first, at an even position
    schedule.new += [item for item in chosen_new if isinstance(item, Target)]
    schedule.new += [Target(item) for item in chosen_new if isinstance(item, str)]
    schedule.due = [known[doc_id][0] for _, doc_id in chosen_due]
    schedule.new_deferred = left_new
    return schedule


def freshness_line(source_id: str, fresh: dict[str, Any]) -> str:
    """One source's re-check state after a cycle, for an operator's terminal or a task log."""
    budget = fresh.get("budget") or {}
    used = fresh.get("budget_used") or {}
    hosts = ", ".join(f"{h} {used.get(h, 0)}/{b}" for h, b in sorted(budget.items())) or "no budget (full)"
    age_h = float(fresh.get("oldest_check_age_s", 0.0)) / 3600
    return (
        f"  {source_id}: {fresh.get('due', 0)} due, {fresh.get('rechecked', 0)} re-checked, "
        f"{fresh.get('deferred', 0)} deferred, {fresh.get('new_deferred', 0)} new left for later; "
        f"{float(fresh.get('fresh_share', 1.0)):.0%} of {fresh.get('documents', 0)} within their interval, "
        f"oldest check {age_h:.1f} h ago; requests per host {hosts}"
    )
