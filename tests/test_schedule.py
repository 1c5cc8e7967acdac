"""policywatch.schedule: the re-check policy, schedules, the per-host budget and one cycle's plan."""

from __future__ import annotations

import math
import sys
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policywatch.schedule import (
    CheckHistory,
    RecheckPolicy,
    corrected_changes,
    cron_interval_fallback_s,
    host_budget,
    next_check_at,
    plan_checks,
    recheck_interval_s,
    schedule_interval_s,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0
DAY = 86400.0
POLICY = RecheckPolicy()


def watched(age_days: float, checks: int = 0, changes: int = 0, not_modified: int = 0) -> CheckHistory:
    """A document published `age_days` ago, watched since, last checked now."""
    published = NOW - timedelta(days=age_days)
    if not checks:  # about as many checks as the policy would have made: hourly for a week, then fewer
        checks = 1 + int(min(age_days, 7) * 24) + int(max(0.0, age_days - 7))
    return CheckHistory(
        first_seen_at=published,
        published_at=published.date(),
        last_checked_at=NOW,
        checks=checks,
        changes=changes,
        not_modified=not_modified,
    )


def interval(history: CheckHistory, policy: RecheckPolicy = POLICY) -> float:
    due = next_check_at(history, NOW, policy)
    return (due - history.last_checked_at).total_seconds() if history.last_checked_at else 0.0


# --- the policy -------------------------------------------------------------------------------


def test_a_removed_page_is_rechecked_ever_more_rarely_up_to_the_maximum():
    base = watched(100)
    gaps = [
        interval(CheckHistory(**{**base.__dict__, "status": "removed", "removed_checks": k}))
        for k in range(16)
    ]
    assert gaps[0] == POLICY.min_interval_s  # right after the removal: soon (a CMS republishing)
    assert gaps[1] == 2 * gaps[0] and gaps[2] == 4 * gaps[0]
    assert all(a <= b for a, b in pairwise(gaps))
    assert gaps[-1] == POLICY.max_interval_s
    # an absurd count does not overflow
    far = CheckHistory(**{**base.__dict__, "status": "removed", "removed_checks": 10_000})
    assert interval(far) == POLICY.max_interval_s


@pytest.mark.parametrize("age_days", [10, 30, 90, 365])
def test_a_document_that_changed_is_rechecked_sooner_than_one_that_did_not(age_days):
    unchanged = interval(watched(age_days))
    changed = interval(watched(age_days, changes=2))
    often = interval(watched(age_days, changes=20))
    assert changed < unchanged
    assert often < changed


def test_this_weeks_document_is_due_every_cycle_and_a_three_year_old_one_rarely():
    for age_days in (0, 1, 3, 6.5):
        assert interval(watched(age_days)) == POLICY.min_interval_s
        assert interval(watched(age_days, changes=0)) == POLICY.min_interval_s
    # three years old: near the maximum, whether watched all along or just found
    assert interval(watched(3 * 365)) >= 0.9 * POLICY.max_interval_s
    found_today = CheckHistory(
        first_seen_at=NOW, published_at=(NOW - timedelta(days=3 * 365)).date(), last_checked_at=NOW
    )
    assert interval(found_today) >= 0.9 * POLICY.max_interval_s


def test_the_interval_grows_with_age():
    gaps = [interval(watched(days)) for days in (7.5, 10, 20, 60, 180, 365, 1000)]
    assert all(a <= b for a, b in pairwise(gaps))
    assert gaps[0] < DAY  # leaving the fresh window gradually, not jumping
    assert gaps[-1] == POLICY.max_interval_s


def test_a_304_history_lengthens_the_interval():
    plain = watched(30, checks=200)
    with_304 = watched(30, checks=200, not_modified=199)
    half = watched(30, checks=200, not_modified=100)
    assert interval(plain) < interval(half) < interval(with_304)
    assert interval(with_304) == pytest.approx(interval(plain) * POLICY.not_modified_factor)


def test_min_and_max_clamp_every_interval():
    policy = RecheckPolicy(min_interval_s=6 * HOUR, max_interval_s=3 * DAY)
    assert interval(watched(1), policy) == 6 * HOUR  # fresh: the minimum, however configured
    assert interval(watched(30, changes=150), policy) == 6 * HOUR  # changing constantly
    assert interval(watched(3 * 365), policy) == 3 * DAY
    removed = CheckHistory(**{**watched(30).__dict__, "status": "removed", "removed_checks": 20})
    assert interval(removed, policy) == 3 * DAY


@settings(max_examples=300, deadline=None)
@given(
    age_days=st.floats(0, 5000),
    watched_days=st.floats(0, 5000),
    checks=st.integers(0, 5000),
    changes=st.integers(0, 5000),
    not_modified=st.integers(0, 5000),
    removed=st.booleans(),
    removed_checks=st.integers(0, 10_000),
    baseline=st.booleans(),
    dated=st.booleans(),
)
def test_every_interval_is_within_the_clamps(
    age_days, watched_days, checks, changes, not_modified, removed, removed_checks, baseline, dated
):
    history = CheckHistory(
        first_seen_at=NOW - timedelta(days=watched_days),
        published_at=(NOW - timedelta(days=age_days)).date() if dated else None,
        last_checked_at=NOW,
        checks=checks,
        changes=changes,
        not_modified=not_modified,
        status="removed" if removed else "active",
        removed_checks=removed_checks,
        baseline=baseline,
    )
    gap = recheck_interval_s(history, POLICY)
    assert POLICY.min_interval_s <= gap <= POLICY.max_interval_s
    assert next_check_at(history, NOW, POLICY) == NOW + timedelta(seconds=gap)


def test_next_check_depends_on_the_history_not_on_when_it_is_asked():
    history = watched(40, changes=1)
    assert next_check_at(history, NOW, POLICY) == next_check_at(history, NOW + timedelta(days=9), POLICY)


def test_a_document_never_checked_is_due_now():
    history = CheckHistory(first_seen_at=NOW - timedelta(days=2), last_checked_at=None)
    assert next_check_at(history, NOW, POLICY) == NOW


def test_an_undated_baseline_page_is_not_taken_for_a_fresh_one():
    fresh = CheckHistory(first_seen_at=NOW, last_checked_at=NOW)
    archive = CheckHistory(first_seen_at=NOW, last_checked_at=NOW, baseline=True)
    assert interval(fresh) == POLICY.min_interval_s
    assert interval(archive) > DAY


def test_a_later_date_on_the_page_does_not_make_it_younger():
    # first seen two years ago; the page now shows last week's date (a revision date)
    history = CheckHistory(
        first_seen_at=NOW - timedelta(days=730),
        published_at=(NOW - timedelta(days=3)).date(),
        last_checked_at=NOW,
        checks=400,
    )
    assert interval(history) == POLICY.max_interval_s  # two years old, not three days


def test_naive_datetimes_are_utc():
    aware = watched(40, changes=1)
    naive = CheckHistory(
        **{
            **aware.__dict__,
            "first_seen_at": aware.first_seen_at.replace(tzinfo=None),
            "last_checked_at": NOW.replace(tzinfo=None),
        }
    )
    assert next_check_at(naive, NOW, POLICY) == next_check_at(aware, NOW, POLICY)


def test_cho_garcia_molina_correction():
    assert corrected_changes(0, 0) == 0
    assert corrected_changes(100, 0) == 0
    # few changes in many checks: about the count itself
    assert corrected_changes(1000, 10) == pytest.approx(10, rel=0.02)
    # a change at every check: many more than seen
    assert corrected_changes(10, 10) > 3 * 10
    assert corrected_changes(10, 99) == corrected_changes(10, 10)  # X > n is read as X = n
    # the estimator itself, λ̂ = −ln((n − X + 0.5)/(n + 0.5)) / I
    assert corrected_changes(20, 5) == pytest.approx(-20 * math.log(15.5 / 20.5))


def test_policy_validation_and_the_schedule_default():
    with pytest.raises(ValueError):
        RecheckPolicy(min_interval_s=0)
    with pytest.raises(ValueError):
        RecheckPolicy(min_interval_s=DAY, max_interval_s=HOUR)
    with pytest.raises(ValueError):
        RecheckPolicy(not_modified_factor=0.5)
    assert RecheckPolicy.for_schedule("@hourly").min_interval_s == HOUR
    daily = RecheckPolicy.for_schedule("@daily", max_interval_s=10 * DAY)
    assert (daily.min_interval_s, daily.max_interval_s) == (DAY, 10 * DAY)
    assert RecheckPolicy.for_schedule("@once").min_interval_s == HOUR
    monthly = RecheckPolicy.for_schedule("0 0 1 * *")  # a cycle longer than the default maximum
    assert monthly.min_interval_s == monthly.max_interval_s == 28 * DAY


# --- schedules and the budget -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [
        ("@hourly", HOUR),
        ("@daily", DAY),
        ("@midnight", DAY),
        ("@weekly", 7 * DAY),
        ("0 * * * *", HOUR),
        ("*/15 * * * *", 900),
        ("5,35 * * * *", 1800),
        ("0 */6 * * *", 6 * HOUR),
        ("30 2 * * *", DAY),
        ("0 9 * * 1-5", DAY),  # weekdays: the shortest gap, not the weekend's
        ("0 8-18 * * MON-FRI", HOUR),
        ("0 0 * * 0", 7 * DAY),
        ("0 0 * * 7", 7 * DAY),
        ("0 0 1 * *", 28 * DAY),
        ("0 0 1,15 * *", 14 * DAY),
        ("0 0 1 jan,jul *", 181 * DAY),
    ],
)
def test_schedule_interval(schedule, seconds):
    assert schedule_interval_s(schedule) == seconds
    if not schedule.startswith("@"):
        assert cron_interval_fallback_s(schedule) == seconds  # without croniter: the same


def test_schedule_without_a_next_run_and_bad_ones():
    assert schedule_interval_s("@once") == math.inf
    assert schedule_interval_s("None") == math.inf
    for bad in ("@fortnightly", "every hour", "61 * * * *", "* * *", "0 0 31 2 *", "*/0 * * * *"):
        with pytest.raises(ValueError):
            schedule_interval_s(bad)
        if not bad.startswith("@") and bad != "every hour":
            with pytest.raises(ValueError):
                cron_interval_fallback_s(bad)


def test_host_budget():
    assert host_budget(2.0, HOUR) == 1440  # the case: 2 s, hourly
    assert host_budget(1.0, HOUR, usable_fraction=0.5) == 1800
    assert host_budget(0.0, HOUR) == 57_600  # no delay: bounded by the floor
    assert host_budget(2.0, DAY) == 34_560
    assert host_budget(2.0, math.inf) == sys.maxsize
    assert host_budget(30.0, 60.0) == 1
    with pytest.raises(ValueError):
        host_budget(2.0, HOUR, usable_fraction=0)


# --- one cycle's plan -------------------------------------------------------------------------


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def test_new_documents_first_then_the_most_overdue():
    known = [("a", at(-1)), ("b", at(-5)), ("c", at(2)), ("d", None), ("e", at(-3)), ("f", NOW)]
    plan = plan_checks(["n1", "n2"], known, NOW, budget=5)
    assert plan.new == ["n1", "n2"]
    assert plan.due == ["d", "b", "e"]  # never checked first, then the most overdue
    assert (plan.deferred, plan.not_due, plan.new_deferred) == (2, 1, 0)
    assert plan.oldest_overdue_s == 5 * HOUR
    assert plan.requests == 5


def test_a_source_with_more_known_documents_than_its_budget_still_gets_its_new_ones():
    known = [(i, at(-1 - i / 1000)) for i in range(5000)]
    plan = plan_checks([f"new{i}" for i in range(30)], known, NOW, budget=1440)
    assert len(plan.new) == 30
    assert len(plan.due) == 1410
    assert plan.due[:3] == [4999, 4998, 4997]
    assert plan.deferred == 5000 - 1410
    # more new documents than the budget: the budget's worth, in the listing's order, the rest counted
    flood = plan_checks([f"new{i}" for i in range(2000)], known, NOW, budget=1440)
    assert flood.new == [f"new{i}" for i in range(1440)]
    assert (flood.due, flood.new_deferred, flood.deferred) == ([], 560, 5000)


def test_full_rechecks_everything_without_a_budget():
    known = [(i, at(h)) for i, h in enumerate([3, -2, 10, -7, 0.5])]
    plan = plan_checks(["n"], known, NOW, budget=1, full=True)
    assert plan.new == ["n"]
    assert plan.due == [3, 1, 4, 0, 2]
    assert (plan.deferred, plan.not_due, plan.new_deferred) == (0, 0, 0)
    assert plan.oldest_overdue_s == 7 * HOUR


def test_nothing_due_and_no_budget():
    known = [("a", at(1))]
    assert plan_checks([], known, NOW, budget=100).due == []
    empty = plan_checks(["n"], [("a", at(-1))], NOW, budget=0)
    assert (empty.new, empty.due, empty.deferred, empty.new_deferred) == ([], [], 1, 1)
    negative = plan_checks(["n"], [("a", at(-1))], NOW, budget=-3)
    assert negative.requests == 0


times = st.one_of(st.none(), st.floats(-1000, 1000).map(lambda h: NOW + timedelta(hours=h)))


@settings(max_examples=300, deadline=None)
@given(
    new=st.lists(st.text(max_size=3), max_size=40),
    times_=st.lists(times, max_size=200),
    budget=st.integers(-5, 250),
)
def test_the_budget_is_never_exceeded(new, times_, budget):
    known = list(enumerate(times_))
    plan = plan_checks(new, known, NOW, budget)
    assert plan.requests <= max(budget, 0)
    # new ones first, in order, as many as fit
    assert plan.new == new[: max(budget, 0)]
    assert plan.new_deferred == len(new) - len(plan.new)
    # only due ones, no repeats, most overdue first
    due = {i for i, t in known if t is None or t <= NOW}
    assert set(plan.due) <= due and len(set(plan.due)) == len(plan.due)

    def key(i: int) -> float:
        return -math.inf if times_[i] is None else times_[i].timestamp()

    keys = [key(i) for i in plan.due]
    assert keys == sorted(keys)
    # none left out that is more overdue than one taken
    if plan.due:
        assert all(key(i) >= keys[-1] for i in due - set(plan.due))
    assert plan.deferred == len(due) - len(plan.due)
    assert plan.not_due == len(known) - len(due)
    # the budget is spent when there is something to spend it on
    assert plan.requests == min(max(budget, 0), len(new) + len(due))
    full = plan_checks(new, known, NOW, budget, full=True)
    assert sorted(full.due) == [i for i, _ in known] and full.new == list(new)


def test_dates_are_accepted_for_published_at():
    history = CheckHistory(first_seen_at=NOW, published_at=date(2026, 11, 30), last_checked_at=NOW)
    assert recheck_interval_s(history, POLICY) == POLICY.min_interval_s
