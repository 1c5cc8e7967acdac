"""PolicyWatch's source DAGs: one per configured source (delivery and digests: policywatch_alerts.py).

Each source DAG reads like the pipeline it runs:
    discover → new_document_batches → fetch_and_version_new (mapped over batches of new documents)
             → due_document_batches → fetch_and_version (mapped over batches of known documents due)
             → finish_cycle → announce_alerts ⇒ Asset policywatch://events ⇒ policywatch_deliver
               (the event only when alerts wait; a quiet run's announce_alerts is skipped)
             → source_health (fails while the source is degraded or down)
A run still going `overdue_after_intervals` schedule intervals after it was queued mails the
operators once (policywatch.overdue: an Airflow Deadline Alert, run by the triggerer).

New documents go first: their events are committed before any re-check starts. Trigger a run with
the parameter `full: true` to re-check every known document of the source, due or not.

The work is done by plain functions in policywatch.tasks, the same code as the `policywatch` CLI.
A broken source entry becomes a paused DAG showing its error; broken settings, subscribers or YAML
raise here, as this file's import error in the Airflow UI (the alert DAGs, in their own file, stay).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from airflow.sdk import (
    Asset,
    Param,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowSkipException

from policywatch.config import BrokenSource, SourceConfig, load_config
from policywatch.dag_support import EVENTS_URI, START, default_args, run_failure_callback
from policywatch.overdue import deadline_alert

CONFIG_PATH = os.environ.get("POLICYWATCH_CONFIG") or None
# Lenient: a source whose entry is invalid becomes a paused DAG that shows its error (key and line)
# instead of an import error of the whole file, which would hide every source, delivery and digest.
CONFIG = load_config(CONFIG_PATH, lenient=True)
EVENTS = Asset(EVENTS_URI)
BATCHES_AT_ONCE = 4
# Airflow 3.3.2's `airflow dags test` exits with status 1 for any DAG that has a deadline, after the
# run itself succeeded (apache/airflow#73428, open): parsed by `dags test`, the source DAGs carry none.
UNDER_DAGS_TEST = sys.argv[1:3] == ["dags", "test"]


def source_doc(source: SourceConfig) -> str:
    urls = "\n".join(f"- {u}" for u in source.configured_urls)
    return (
        f"### {source.name}\n\nSource `{source.id}`, schedule `{source.schedule}`, at least "
        f"{source.min_delay_s:g} s between requests to a host, whichever worker makes them; up to "
        f"{BATCHES_AT_ONCE} batches at once.\n\n"
        f"**URLs**\n\n{urls}\n\nEach task returns its counts (fetched, not modified, unchanged, new, changed, "
        "removed, errors): see the task's XCom and log."
    )


def build_source_dag(source: SourceConfig) -> Any:
    @dag(
        dag_id=f"policywatch_{source.id}",
        dag_display_name=f"{source.name} ({source.id})",
        schedule=source.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        # No pool per host: the host's politeness is shared by every worker (crawlers.pacing), and
        # this bounds how many worker slots one source's batches take while they wait their turns.
        max_active_tasks=BATCHES_AT_ONCE,
        default_args=default_args(CONFIG.settings),
        on_failure_callback=run_failure_callback(),
        doc_md=source_doc(source),
        tags=["policywatch", "source"],
        params={"full": Param(False, type="boolean", description="re-check every known document")},
        # A run still going N schedule intervals after it was queued mails the operators once.
        deadline=None
        if UNDER_DAGS_TEST
        else deadline_alert(source.id, source.schedule, CONFIG.settings.overdue_after_intervals),
    )
    def source_dag() -> None:
        @task
        def discover() -> dict[str, Any]:
            full = bool(get_current_context()["params"].get("full", False))
            from policywatch import tasks  # in the task: parsing the file stays cheap

            return tasks.discover_source(source.id, CONFIG_PATH, full=full)

        # Two small tasks hand each mapped task its list of batches: discover's `multiple_outputs`
        # would be the idiom, but Airflow 3.3 refuses to expand over a keyed XCom ("Cannot map over
        # XCom with custom key"), and the whole plan must not travel into every mapped task.
        @task
        def new_document_batches(plan: dict[str, Any]) -> list[dict[str, Any]]:
            return plan["new_batches"]

        # all_done: a failed batch of new documents does not hold back the re-checks.
        @task(trigger_rule="all_done")
        def due_document_batches(plan: dict[str, Any]) -> list[dict[str, Any]]:
            return plan["due_batches"]

        @task(map_index_template="{{ batch_label }}")
        def fetch_and_version(batch: dict[str, Any]) -> dict[str, Any]:
            from policywatch import tasks

            targets = batch["targets"]
            label = f"{len(targets)} document{'' if len(targets) == 1 else 's'}"
            if targets:
                label += f" from {targets[0].get('url', '')}"
            get_current_context()["batch_label"] = label  # type: ignore[typeddict-unknown-key]
            return tasks.process_batch(batch, CONFIG_PATH)

        # Closes the source's cycle (baseline, last success, health input) and counts what the
        # batches committed: the changes themselves were found, one page at a time, in the batches.
        @task(trigger_rule="none_failed")
        def finish_cycle(plan: dict[str, Any], fresh: list[dict], due: list[dict]) -> dict[str, Any]:
            from policywatch import tasks

            return tasks.finish(plan, [*fresh, *due], CONFIG_PATH)

        # The alerts themselves were queued by the batches, with their events; this tells the
        # delivery DAG (and the operator) that some wait.
        @task(outlets=[EVENTS])
        def announce_alerts(changes: dict[str, Any]) -> dict[str, Any]:
            from policywatch import tasks

            counts = tasks.alert_counts(changes)
            if not counts["alerts_pending"]:
                # No Asset event: policywatch_deliver is not woken for nothing (this shows as skipped).
                raise AirflowSkipException("no alert waiting to be sent")
            events = {k: counts.get(k, 0) for k in ("new", "changed", "removed", "restored")}
            get_current_context()["outlet_events"][EVENTS].extra = {
                "source_id": source.id,
                "alerts_pending": counts["alerts_pending"],
                **events,
            }
            return counts

        @task(trigger_rule="none_failed")  # also after a quiet run's skipped announce_alerts
        def source_health(changes: dict[str, Any]) -> dict[str, Any]:
            from policywatch import tasks

            return tasks.check_health(changes, CONFIG_PATH)

        plan = discover()
        fresh = fetch_and_version.override(task_id="fetch_and_version_new").expand(
            batch=new_document_batches(plan)
        )
        due_batches = due_document_batches(plan)
        fresh >> due_batches  # the re-checks start once the new documents are recorded
        due = fetch_and_version.override(trigger_rule="none_failed").expand(batch=due_batches)
        changes = finish_cycle(plan, fresh, due)
        announce_alerts(changes) >> source_health(changes)  # red while the source is degraded

    return source_dag()


def build_broken_source_dag(broken: BrokenSource) -> Any:
    """A source whose configuration is invalid: a paused DAG whose only task fails with the error."""
    message = str(broken.error)
    logging.getLogger(__name__).error("source %s is not scheduled: %s", broken.id or broken.index, message)

    @dag(
        dag_id=f"policywatch_{broken.id}" if broken.id else f"policywatch_broken_source_{broken.index}",
        schedule=None,
        start_date=START,
        catchup=False,
        is_paused_upon_creation=True,
        description=f"BROKEN CONFIGURATION: {message}"[:1000],
        doc_md=f"### Broken configuration\n\nThis source is not watched until its entry is fixed:\n\n"
        f"```\n{message}\n```",
        tags=["policywatch", "source", "broken"],
    )
    def broken_source_dag() -> None:
        @task(retries=0)
        def configuration_error() -> None:
            raise ValueError(message)

        configuration_error()

    return broken_source_dag()


for _source in CONFIG.sources:
    globals()[f"policywatch_{_source.id}"] = build_source_dag(_source)
for _broken in CONFIG.broken:
    globals()[f"policywatch_broken_{_broken.index}"] = build_broken_source_dag(_broken)
