"""benchmarks.floor: the budget arithmetic by hand, and its steps measured on a real benchmark site."""

from __future__ import annotations

import json
import os

import pytest

from benchmarks import floor
from benchmarks.run import Site

STEPS = {
    "fetch": 1.0,
    "fetch_304": 0.5,
    "parse": 0.25,
    "parse_checked": 0.375,
    "evidence": 2.0,
    "soup": 8.0,
    "extract": 14.0,
    "pack": 1.5,
}


def test_budget_is_the_cores_time_left_after_the_imports_less_the_sites_share():
    # 1,000 pages at 500 pages/s: 2 s of wall time; 0.5 s of imports leave 1.5 s on 2 cores = 3,000 ms,
    # of which the site takes 0.25 ms a page: 2,750 ms for 1,000 pages.
    assert floor.budget_ms(500, 1000, 0.5, 0.25, 2) == pytest.approx(2.75)
    # A goal the imports alone miss leaves a negative budget: no page can be fast enough.
    assert floor.budget_ms(4000, 1000, 0.5, 0.0, 2) < 0


@pytest.mark.parametrize(
    ("phase", "hard", "built"),
    [
        ("cold", 9.0, 16.5),
        ("warm", 1.25, 3.375),
        ("changed", 1.25, 3.375 + 0.05 * 15.5),
        ("304", 0.5, 0.5),
    ],
)
def test_floors_sum_the_steps_a_phase_cannot_skip(phase, hard, built):
    assert floor.floors(STEPS, phase) == (pytest.approx(hard), pytest.approx(built))


def test_the_newest_usable_result_is_taken(tmp_path):
    phases = {p: {"policywatch": {}, "urlwatch": {"pages_per_s": 100.0}} for p in floor.GOALS}
    no_urlwatch = {p: {"policywatch": {}} for p in floor.GOALS}
    results = {
        "a.json": ("2026-12-04T09:00:00+00:00", {"baseline": {"phases": phases}}),
        "z-older.json": ("2026-11-23T09:00:00+00:00", {"mixed": {"phases": phases}}),
        "b-newest-partial.json": ("2026-12-05T09:00:00+00:00", {"mixed": {"phases": no_urlwatch}}),
    }
    for name, (date, profiles) in results.items():
        (tmp_path / name).write_text(json.dumps({"date": date, "profiles": profiles}))
        os.utime(tmp_path / name, (1_000_000, 1_000_000))  # a fresh clone: one modification time
    (tmp_path / "floor.json").write_text(json.dumps({"date": "2026-12-06", "profiles": {"x": {}}}))
    assert floor.newest_bench_result(tmp_path) == tmp_path / "a.json"
    with pytest.raises(SystemExit, match="run make bench first"):
        floor.newest_bench_result(tmp_path / "empty")


def test_every_step_is_measured_on_a_real_site():
    site = Site(6, "mixed")
    try:
        steps = floor.measure_steps(site, 6)
    finally:
        site.close()
    assert set(STEPS) | {"site_per_request"} == set(steps)
    # Each step ran (a step that did nothing would take no CPU at all on six pages).
    assert all(steps[name] > 0 for name in STEPS)
