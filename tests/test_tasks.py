"""The Airflow task functions, called directly (no Airflow): they run the same pipeline as the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from policywatch import tasks
from policywatch.config import ConfigError
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.locking import SourceBusy, source_lock
from storage.db import make_engine
from tests.support.site import LocalSite


@pytest.fixture
def task_env(site: LocalSite, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    config = tmp_path / "sources.yaml"
    config.write_text(
        f"""
sources:
  - id: local
    name: 本地
    listing_urls: ["{site.url("/list/")}"]
    link_pattern: "/content/"
    min_delay_s: 0
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    paras = corpus_paragraphs("004")
    site.put("/list/", '<a href="/content/1.html">1</a> <a href="/content/2.html">2</a>')
    site.put("/content/1.html", gov_cn_page("数字经济发展规划", paras[1:30]))
    site.put("/content/2.html", gov_cn_page("数据要素通知", paras[30:60]))
    return str(config)


def test_discover_batches_and_finish_make_one_cycle(task_env: str) -> None:
    plan = tasks.discover_source("local", task_env, batch_size=1)
    assert plan["silent"] is True and plan["due_batches"] == []
    # Batches are even-sized (a possible move's two targets stay together) and self-contained.
    [batch] = plan["new_batches"]
    assert batch["source_id"] == "local" and batch["silent"] is True and len(batch["targets"]) == 2
    results = [tasks.process_batch(batch, task_env) for batch in plan["new_batches"]]
    total = tasks.finish(plan, results)
    assert (total["baseline"], total["errors"], total["documents_seen"]) == (2, 0, 2)
    assert total["freshness"]["local"]["documents"] == 0  # planned before the baseline recorded any
    # The next cycle finds both known, and nothing new: re-checked with what the budget leaves.
    again = tasks.discover_source("local", task_env, batch_size=1)
    assert again["silent"] is False and again["new_batches"] == []
    assert sum(len(b["targets"]) for b in again["due_batches"]) == 2
    done = tasks.finish(again, [tasks.process_batch(b, task_env) for b in again["due_batches"]])
    assert done["unchanged"] + done["not_modified"] == 2 and done["early"] == 2
    assert done["freshness"]["local"]["oldest_check_age_s"] < 60


def test_a_batch_waits_for_a_cli_cycle_on_the_same_source(task_env: str, db_url: str) -> None:
    plan = tasks.discover_source("local", task_env)
    [batch] = plan["new_batches"]
    engine = make_engine(db_url)
    with source_lock(engine, "local"), pytest.raises(SourceBusy):
        tasks.process_batch(batch, task_env, lock_wait_s=0.5)
    # Once the other cycle is done, the retry goes through.
    assert tasks.process_batch(batch, task_env)["baseline"] == 2
    engine.dispose()


def test_a_broken_source_entry_does_not_stop_the_other_sources_tasks(task_env: str) -> None:
    """The DAG file shows a broken entry as its own paused DAG; the valid sources' tasks, which load
    the same file, must still run (and the broken one's id is no source of theirs)."""
    path = Path(task_env)
    path.write_text(
        path.read_text(encoding="utf-8")
        + """  - id: broken
    name: 坏的
    pages: ["not a url"]
""",
        encoding="utf-8",
    )
    plan = tasks.discover_source("local", task_env)
    results = [tasks.process_batch(batch, task_env) for batch in plan["new_batches"]]
    assert tasks.finish(plan, results, task_env)["baseline"] == 2
    with pytest.raises(ConfigError, match="broken"):
        tasks.discover_source("broken", task_env)


def test_a_retried_batch_reports_what_the_killed_try_committed(task_env: str, site: LocalSite) -> None:
    """A worker killed after its batch committed a change: the retry sees the page unchanged and
    counts nothing, but the run's summary says what the store recorded for the run."""
    plan = tasks.discover_source("local", task_env)
    tasks.finish(plan, [tasks.process_batch(b, task_env) for b in plan["new_batches"]])  # the baseline
    site.put(
        "/content/1.html", gov_cn_page("数字经济发展规划", corpus_paragraphs("004")[1:29])
    )  # one paragraph less
    again = tasks.discover_source("local", task_env)
    batches = again["new_batches"] + again["due_batches"]
    killed_try = [tasks.process_batch(b, task_env) for b in batches]
    assert sum(r["changed"] for r in killed_try) == 1  # committed, then the worker died: result lost
    retry = [tasks.process_batch(b, task_env) for b in batches]
    assert sum(r["changed"] for r in retry) == 0
    total = tasks.finish(again, retry)
    assert (total["changed"], total["new"], total["removed"]) == (1, 0, 0)
