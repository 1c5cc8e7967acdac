"""When to re-check a known document, and what one cycle of a host can afford: pure functions.

(About 470 lines, half of them this explanation and the policy's parameters: the model, the cron
arithmetic and the budget belong together and are tested together, tests/test_schedule.py.)

A cycle used to re-fetch every known document. A polite crawler asks one government host for a page
every ~2 s (1,800 an hour), so an hourly cycle cannot finish once a host has more than ~1,800
known documents, and the new documents, which matter most, wait behind the old ones. Here each
document gets a next-check time from what is known about it, and a cycle checks, per host, the new
documents first and then the known documents that are due, most overdue first, within a request
budget; what does not fit is counted and left for the next cycle. No database: the pipeline gives
the history (`CheckHistory`) and stores or recomputes `next_check_at`.

The policy (`next_check_at`, parameters in `RecheckPolicy`)
-------------------------------------------------------------

Notation: `a` the document's age when it was last checked, `T` the time it has been watched
(first seen → last checked), `n = checks − 1` the comparisons made, `X` the changes they found,
`m`/`M` the minimum/maximum interval, `I` the interval to the next check.

1. Removed (404/410): re-checked for a restoration with a doubling interval, `I = m · 2^k` for the
   k-th re-check that still found it gone (a page is often gone for minutes during a CMS
   republication, rarely comes back after weeks).

2. Fresh window: a document younger than `fresh_age_s` (a week) is checked every cycle, `I = m`.
   Young documents are where the changes are (corrections, attachments and 解读 added, reposts
   edited in the first days), there is no history to estimate from yet, and they are what the
   analysts read; they are few (a week of publications) so the cost is bounded.

3. Otherwise the change rate is estimated and turned into an interval:

   * Age prior. Government documents rarely change once the first week is over, and the longer a
     document has stayed as it is, the less likely it is to change: the prior rate decays with age,
     `λ₀(a) = (1 / prior_change_interval_s) · (fresh_age / a)^age_decay`; with the defaults a
     one-week-old document is expected to change once a month, a one-year-old once in ~30 years,
     a three-year-old once in ~160 years.
   * History: Cho & Garcia-Molina's estimator for a Poisson process sampled at interval `I`,
     `λ̂ = −ln((n − X + 0.5) / (n + 0.5)) / I`, which corrects for the changes a check cannot see
     (two changes between two checks look like one; a page found changed at every check is
     changing faster than the checks). Our intervals are not regular: `I` is taken as the mean
     interval `T / n`, so the history contributes `X̂ = λ̂·T = −n · ln((n − X + 0.5) / (n + 0.5))`
     corrected changes over `T` seconds.
   * Blend: the prior is worth `prior_weight_s` of observation (a Gamma prior, shape `λ₀·T₀`,
     rate `T₀`), `λ = (λ₀·T₀ + X̂) / (T₀ + T)`. The history's weight `T / (T₀ + T)` grows with the
     time watched, not the number of checks: 150 hourly checks without a change in one week say
     little about a rate of once a year.
   * Interval: re-checking at interval `I` a page that changes at rate `λ` costs `1/I` requests per
     second and leaves a change unseen for `I/2` on average, `λ·I/2` seconds of delay per second.
     Pricing a request at `μ = request_cost_s` seconds of delay, the total `λ·I/2 + μ/I` is least
     at `I = √(2μ / λ)`: the square-root rule (the same allocation minimises the summed detection
     delay of many pages under a fixed request budget, with `μ` its Lagrange multiplier). Unlike
     freshness-optimal scheduling (Cho & Garcia-Molina 2003, which gives up on pages changing much
     faster than they can be checked), every change here is an event someone wants, so faster-
     changing pages are always checked more often, but only as the square root of their rate.
     With μ = 5 min: a page changing daily is checked every 2 h, weekly every ~5 h, yearly every
     ~1.6 days. (benchmarks/schedule_sim.py, 1M documents on 3,000 hosts at 2 s: μ 15 min → 5 min
     costs a third more requests and takes the p90 change latency from ~8 h to ~5 h; 1 min costs
     another 65% and brings the busiest host close to its budget.)
   * 304 history: answers of 304 Not Modified lengthen the interval by up to
     `not_modified_factor` (× 1 + (f − 1) · share of comparisons that were 304). A 304 is cheaper
     for us (no body, no extraction), but the host budget counts requests, not bytes, and the
     evidence is stronger: the server itself vouches that not a byte of the page was regenerated,
     where a 200 with the same text only says the text is the same.
   * Leaving the fresh window gradually: `I ≤ max(m, a − fresh_age)`, so the interval grows from
     `m` by at most doubling per check instead of jumping from an hour to a day.

4. Clamp to `[m, M]`: `m` defaults to the source's schedule interval (checking more often than the
   cycle runs is impossible), `M` to 7 days: even a dormant page is looked at weekly, so that its
   removal, or a 已废止/已失效 notice added to an old regulation, is seen within a week (in the
   simulation, 7 rather than 30 days costs ~10% more requests and sees 91% rather than 61% of the
   removals within two days). `next_check_at = last_checked_at + I`.

The result depends only on the history, not on when it is computed (`now` only makes a document
that was never checked due at once), so the pipeline may store it or recompute it at will. A fetch
error (timeout, 5xx, challenge page) is not a check: the document stays due and is retried next
cycle, inside the budget.

The budget (`host_budget`, `plan_checks`)
-----------------------------------------

One host answers one request every `max(min_delay_s, floor_s)` seconds; one cycle may use
`usable_fraction` of the time until the next one, so
`budget = ⌊usable_fraction · schedule_interval_s / max(min_delay_s, floor_s)⌋` (2 s, hourly: 1,440).
It is per host: sources on one host share it, and the listing pages read for discovery come out of
it too (the caller passes what is left for documents). `plan_checks` spends it on the new documents
first, then on the due ones, most overdue first, and counts what it left.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Generic, Literal, TypeVar

DAY_S = 86_400.0
HOUR_S = 3_600.0
CHINA_TZ = timezone(timedelta(hours=8))  # a page's 成文/发布日期 is a Beijing date


@dataclass(frozen=True)
class RecheckPolicy:
    """The re-check policy's parameters (see the module docstring); per source, from `recheck:`."""

    # Never re-check sooner than this: the source's schedule interval (`for_schedule`).
    min_interval_s: float = HOUR_S
    # Never wait longer than this, however dormant the page.
    max_interval_s: float = 7 * DAY_S
    # Younger than this (from its publication date, else from when it was first seen): every cycle.
    fresh_age_s: float = 7 * DAY_S
    # μ: the change-detection delay one request is worth. Lower: more requests, changes seen sooner.
    request_cost_s: float = 5 * 60.0
    # The age prior: at fresh_age_s a document is expected to change once in this long ...
    prior_change_interval_s: float = 30 * DAY_S
    # ... and its rate falls as (fresh_age / age) ** age_decay afterwards.
    age_decay: float = 1.5
    # The age assumed for an undated page first seen by the source's baseline crawl (an archive page).
    baseline_age_s: float = 30 * DAY_S
    # How much watching the prior is worth (T₀): the history outweighs it once watched longer.
    prior_weight_s: float = 30 * DAY_S
    # An interval is multiplied by up to this when every comparison was answered 304 Not Modified.
    not_modified_factor: float = 1.5

    def __post_init__(self) -> None:
        if not (0 < self.min_interval_s <= self.max_interval_s) or math.isinf(self.max_interval_s):
            raise ValueError(
                f"recheck intervals must satisfy 0 < min ≤ max < ∞, got min {self.min_interval_s} "
                f"max {self.max_interval_s}"
            )
        positive = (
            "fresh_age_s",
            "request_cost_s",
            "prior_change_interval_s",
            "prior_weight_s",
            "baseline_age_s",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"recheck {name} must be positive")
        if self.age_decay < 0 or self.not_modified_factor < 1:
            raise ValueError("recheck age_decay must be ≥ 0 and not_modified_factor ≥ 1")

    @classmethod
    def for_schedule(cls, schedule: str, **overrides: float) -> RecheckPolicy:
        """The defaults for a source run on `schedule`: the minimum interval is its cycle's length
        (the default's when it has none, "@once"); `overrides` (a `recheck:` block) win."""
        interval = schedule_interval_s(schedule)
        values: dict[str, float] = {"min_interval_s": interval if math.isfinite(interval) else HOUR_S}
        values.update(overrides)
        if "max_interval_s" not in overrides:
            values["max_interval_s"] = max(cls.max_interval_s, values["min_interval_s"])
        return cls(**values)


@dataclass(frozen=True)
class CheckHistory:
    """What is known about one document when its next check is decided."""

    # When the document was first recorded (documents.first_seen_at).
    first_seen_at: datetime
    # Its publication date as extracted (versions.published_at), None when the page gives none. The
    # age is measured from the earlier of this and first_seen_at (a page that shows a later date,
    # e.g. its last revision, is not younger than our first sighting of it).
    published_at: date | None = None
    # The last successful check: content read, 304, or a confirmed 404/410. None: never checked.
    last_checked_at: datetime | None = None
    # Successful checks so far, the first fetch included (so checks − 1 comparisons were made).
    checks: int = 1
    # Comparisons that found the text or the title changed (change events of kind "changed").
    changes: int = 0
    # Comparisons answered 304 Not Modified.
    not_modified: int = 0
    status: Literal["active", "removed"] = "active"
    # Re-checks since the removal was detected that found the page still gone (0 right after).
    removed_checks: int = 0
    # First seen by the source's baseline crawl: with no published_at, its age is unknown rather
    # than zero; it is then taken to be the policy's baseline_age_s at its first sighting, so a
    # baseline of a thousand undated archive pages is not checked every cycle for a week.
    baseline: bool = False


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def document_age_s(history: CheckHistory, at: datetime, policy: RecheckPolicy) -> float:
    """The document's age at `at`, in seconds (never negative)."""
    born = _utc(history.first_seen_at)
    if history.published_at is not None:
        published = datetime.combine(history.published_at, time(), tzinfo=CHINA_TZ)
        born = min(born, published)
    elif history.baseline:
        born -= timedelta(seconds=policy.baseline_age_s)
    return max(0.0, (_utc(at) - born).total_seconds())


def prior_rate(age_s: float, policy: RecheckPolicy) -> float:
    """λ₀(a): the changes per second expected of a document of this age, before its history."""
    age = max(age_s, policy.fresh_age_s)
    return (policy.fresh_age_s / age) ** policy.age_decay / policy.prior_change_interval_s


def corrected_changes(comparisons: int, changes: int) -> float:
    """X̂ = λ̂·T: Cho & Garcia-Molina's estimate of the changes that happened over `comparisons`
    checks that found `changes` (X ≤ n; X = n is a page changing faster than it is checked)."""
    n = max(comparisons, 0)
    x = min(max(changes, 0), n)
    if n == 0:
        return 0.0
    return -n * math.log((n - x + 0.5) / (n + 0.5))


def change_rate(history: CheckHistory, policy: RecheckPolicy) -> float:
    """λ: the blended estimate of the document's change rate (per second), as of its last check."""
    checked = _utc(history.last_checked_at or history.first_seen_at)
    age = document_age_s(history, checked, policy)
    watched = max(0.0, (checked - _utc(history.first_seen_at)).total_seconds())
    prior = prior_rate(age, policy)
    x_hat = corrected_changes(history.checks - 1, history.changes)
    return (prior * policy.prior_weight_s + x_hat) / (policy.prior_weight_s + watched)


def recheck_interval_s(history: CheckHistory, policy: RecheckPolicy) -> float:
    """I: the seconds from the last check to the next (see the module docstring), in [min, max]."""
    low, high = policy.min_interval_s, policy.max_interval_s
    if history.status == "removed":
        # 2 ** k overflows float past k ≈ 1024: cap the exponent, the clamp does the rest.
        return min(high, low * 2.0 ** min(max(history.removed_checks, 0), 60))
    checked = _utc(history.last_checked_at or history.first_seen_at)
    age = document_age_s(history, checked, policy)
    if age < policy.fresh_age_s:
        return low
    interval = math.sqrt(2 * policy.request_cost_s / change_rate(history, policy))
    comparisons = history.checks - 1
    if comparisons > 0 and history.not_modified > 0:
        share = min(history.not_modified, comparisons) / comparisons
        interval *= 1 + (policy.not_modified_factor - 1) * share
    interval = min(interval, max(low, age - policy.fresh_age_s))
    return min(high, max(low, interval))


def next_check_at(history: CheckHistory, now: datetime, policy: RecheckPolicy) -> datetime:
    """When the document should next be checked: its last check plus `recheck_interval_s`; a
    document never checked is due `now`."""
    if history.last_checked_at is None:
        return _utc(now)
    return _utc(history.last_checked_at) + timedelta(seconds=recheck_interval_s(history, policy))


# --- schedules and budgets --------------------------------------------------------------------

PRESETS_S = {
    "@hourly": HOUR_S,
    "@daily": DAY_S,
    "@midnight": DAY_S,
    "@weekly": 7 * DAY_S,
    "@monthly": 28 * DAY_S,  # the shortest month: the budget must fit the shortest gap
    "@quarterly": 90 * DAY_S,  # Jan 1 → Apr 1, 90 days (91 in a leap year)
    "@yearly": 365 * DAY_S,
    "@annually": 365 * DAY_S,
}
NEVER = ("@once", "none", "")  # a single run: no next run to make room for
# Cron runs are enumerated from here (a Monday in a leap year) for up to this long or this many.
_CRON_FROM = datetime(2024, 1, 1, tzinfo=UTC)
_CRON_SPAN = timedelta(days=366 * 8 + 1)
_CRON_RUNS = 2_000


def schedule_interval_s(schedule: str) -> float:
    """The seconds between two runs of an Airflow-style schedule: a preset ("@hourly", "@daily",
    "@weekly", "@monthly", "@yearly"), or a five-field cron expression. Irregular crons give their
    shortest gap (a cycle must fit before the next one starts): "0 9 * * 1-5" is one day, not the
    weekend's three. "@once" (or "None"): infinity. Raises ValueError for anything else."""
    text = " ".join(schedule.split())
    if text.lower() in NEVER:
        return math.inf
    if text.lower() in PRESETS_S:
        return PRESETS_S[text.lower()]
    if text.startswith("@"):
        raise ValueError(f"unknown schedule preset {schedule!r}")
    return _cron_interval_s(text)


@lru_cache(maxsize=256)
def _cron_interval_s(expression: str) -> float:
    try:
        from croniter import croniter  # an Airflow dependency: installed with the DAGs
    except ImportError:  # pragma: no cover - depends on the environment
        return cron_interval_fallback_s(expression)
    if len(expression.split()) != 5:
        raise ValueError(f"schedule {expression!r}: a cron expression has five fields")
    try:
        runs = croniter(expression, _CRON_FROM)
    except (ValueError, KeyError) as exc:  # croniter's CroniterError is a ValueError
        raise ValueError(f"schedule {expression!r}: {exc}") from exc
    previous: datetime = runs.get_next(datetime)
    shortest = math.inf
    for _ in range(_CRON_RUNS):
        current: datetime = runs.get_next(datetime)
        if current - _CRON_FROM > _CRON_SPAN:
            break
        shortest = min(shortest, (current - previous).total_seconds())
        previous = current
    if not math.isfinite(shortest):
        raise ValueError(f"schedule {expression!r} runs at most once in {_CRON_SPAN.days} days")
    return shortest


_FIELDS = (  # name, lowest, highest, names
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


def _cron_field(text: str, index: int) -> tuple[frozenset[int], bool]:
    """One cron field: the values it allows, and whether it restricts anything ("*" does not)."""
    name, low, high, names = _FIELDS[index]
    values: set[int] = set()

    def number(token: str) -> int:
        token = token.lower()
        if token in names:
            return names.index(token) + (1 if index == 3 else 0)
        if not token.isdigit():
            raise ValueError(f"cron {name}: {token!r} is not a number")
        value = int(token)
        if not low <= value <= high:
            raise ValueError(f"cron {name}: {value} is outside {low}-{high}")
        return value

    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else None
        if step_text and (step is None or step == 0):
            raise ValueError(f"cron {name}: bad step in {part!r}")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (number(t) for t in span.split("-", 1))
            if first > last:
                raise ValueError(f"cron {name}: empty range {span!r}")
        else:
            first = number(span)
            last = high if step else first
        values.update(range(first, last + 1, step or 1))
    if index == 4 and 7 in values:  # Sunday is 0 or 7
        values = (values - {7}) | {0}
    return frozenset(values), text != "*" and not text.startswith("*/")


def cron_interval_fallback_s(expression: str) -> float:
    """The shortest gap between two runs of a five-field cron expression, without croniter: the
    common forms (*, n, a-b, lists, */n, a-b/n, month and weekday names; day-of-month and
    day-of-week combine with OR when both are restricted, as in cron)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"schedule {expression!r}: a cron expression has five fields")
    try:
        parsed = [_cron_field(text, i) for i, text in enumerate(fields)]
    except ValueError as exc:
        raise ValueError(f"schedule {expression!r}: {exc}") from exc
    (minutes, _), (hours, _), (mdays, mday_set), (months, _), (wdays, wday_set) = parsed
    times = sorted(h * 60 + m for h in hours for m in minutes)
    previous: datetime | None = None
    shortest = math.inf
    found = 0
    day = _CRON_FROM
    while day - _CRON_FROM <= _CRON_SPAN and found < _CRON_RUNS:
        by_mday, by_wday = day.day in mdays, (day.weekday() + 1) % 7 in wdays
        runs_today = by_mday or by_wday if mday_set and wday_set else by_mday and by_wday
        if day.month in months and runs_today:
            for minute in times:
                current = day + timedelta(minutes=minute)
                if previous is not None:
                    shortest = min(shortest, (current - previous).total_seconds())
                previous = current
                found += 1
        day += timedelta(days=1)
    if not math.isfinite(shortest):
        raise ValueError(f"schedule {expression!r} runs at most once in {_CRON_SPAN.days} days")
    return shortest


def host_budget(
    min_delay_s: float, schedule_interval_s: float, usable_fraction: float = 0.8, floor_s: float = 0.05
) -> int:
    """Requests one host can be sent in one cycle: ⌊usable_fraction · interval / max(delay, floor)⌋.

    `floor_s` bounds a source with no politeness delay (min_delay_s 0) by what one request costs
    anyway. An infinite interval ("@once") has no next cycle to make room for: no limit
    (`sys.maxsize`)."""
    if not 0 < usable_fraction <= 1:
        raise ValueError("usable_fraction must be in (0, 1]")
    if floor_s <= 0 or min_delay_s < 0 or schedule_interval_s < 0:
        raise ValueError("floor_s must be positive, min_delay_s and schedule_interval_s not negative")
    if math.isinf(schedule_interval_s):
        return sys.maxsize
    return math.floor(usable_fraction * schedule_interval_s / max(min_delay_s, floor_s))


# --- one cycle's plan ---------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)
N = TypeVar("N")


@dataclass(frozen=True)
class CheckPlan(Generic[N, K]):
    """What one cycle checks on one host, in this order, and what it leaves for later."""

    new: list[N]  # new documents (never fetched), in the caller's order, up to the budget
    due: list[K]  # known documents due, most overdue first, within what the new ones left
    deferred: int = 0  # known documents due but over the budget: the next cycle's, first in line
    new_deferred: int = 0  # new documents over the budget (the caller must remember them)
    not_due: int = 0  # known documents not due yet
    # How overdue the most overdue due document is (0: none; documents never checked not counted):
    # growing from cycle to cycle, it says the budget does not keep up with the schedule.
    oldest_overdue_s: float = 0.0
    budget: int | None = None  # the budget this plan was made for (None: full)

    @property
    def requests(self) -> int:
        return len(self.new) + len(self.due)


def plan_checks(
    new_urls: Sequence[N],
    known: Sequence[tuple[K, datetime | None]],
    now: datetime,
    budget: int,
    full: bool = False,
) -> CheckPlan[N, K]:
    """Spend one cycle's budget: every new document first (in order, up to `budget`), then the known
    documents whose next check time has come (`None`: never checked, the most overdue of all), most
    overdue first (ties in the given order). `full`: every known document, no budget (a forced
    re-check of the whole source). `new_urls` may hold anything that must go first, e.g. the
    pipeline's move pairs (a known document and the new URL that may be it).
    """
    now = _utc(now)
    if full:
        order = sorted(range(len(known)), key=lambda i: (_key_time(known[i][1]), i))
        overdue = [(now - _utc(t)).total_seconds() for _, t in known if t is not None]
        due_now = [s for s in overdue if s >= 0]
        return CheckPlan(list(new_urls), [known[i][0] for i in order], oldest_overdue_s=max([0.0, *due_now]))
    budget = max(0, budget)
    new = list(new_urls[:budget])
    room = budget - len(new)
    due_items = [(i, t) for i, (_, t) in enumerate(known) if t is None or _utc(t) <= now]
    chosen = heapq.nsmallest(room, due_items, key=lambda item: (_key_time(item[1]), item[0]))
    overdue = [(now - _utc(t)).total_seconds() for _, t in due_items if t is not None]
    return CheckPlan(
        new=new,
        due=[known[i][0] for i, _ in chosen],
        deferred=len(due_items) - len(chosen),
        new_deferred=len(new_urls) - len(new),
        not_due=len(known) - len(due_items),
        oldest_overdue_s=max([0.0, *overdue]),
        budget=budget,
    )


def _key_time(moment: datetime | None) -> float:
    return -math.inf if moment is None else _utc(moment).timestamp()
