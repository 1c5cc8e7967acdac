"""The Airflow task functions, called directly (no Airflow): they run the same pipeline as the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch import tasks
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
    assert plan["silent"] is True and plan["known_batches"] == [] and len(plan["new_urls"]) == 2
    batches = tasks.new_batches(plan, task_env, batch_size=1)
    assert [len(b) for b in batches] == [1, 1]
    results = [tasks.process_batch("local", batch, plan["silent"], task_env) for batch in batches]
    total = tasks.finish(plan, results)
    assert (total["baseline"], total["errors"], total["documents_seen"]) == (2, 0, 2)
    # The next cycle finds both known, in batches, and nothing new.
    again = tasks.discover_source("local", task_env, batch_size=1)
    assert again["silent"] is False and len(again["known_batches"]) == 2 and again["new_urls"] == []


def test_a_batch_waits_for_a_cli_cycle_on_the_same_source(task_env: str, db_url: str) -> None:
    plan = tasks.discover_source("local", task_env)
    [batch] = tasks.new_batches(plan, task_env)
    engine = make_engine(db_url)
    with source_lock(engine, "local"), pytest.raises(SourceBusy):
        tasks.process_batch("local", batch, plan["silent"], task_env, lock_wait_s=0.5)
    # Once the other cycle is done, the retry goes through.
    assert tasks.process_batch("local", batch, plan["silent"], task_env)["baseline"] == 2
    engine.dispose()
