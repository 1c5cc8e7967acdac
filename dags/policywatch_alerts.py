"""PolicyWatch's alert DAGs: `policywatch_deliver` and `policywatch_digest`.

In a file of their own: a typo in sources.yaml that breaks the source DAGs' file must not stop the
alerts that are already queued. Broken settings here fall back to the defaults (the tasks then
report the configuration error themselves, red, when they load it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from policywatch.config import ConfigError, Settings, load_config
from policywatch.dag_support import EVENTS_URI, START, default_args, run_failure_callback

CONFIG_PATH = os.environ.get("POLICYWATCH_CONFIG") or None
try:
    SETTINGS = load_config(CONFIG_PATH, lenient=True).settings
except (ConfigError, OSError) as exc:
    logging.getLogger(__name__).error("alert DAGs use default settings: %s", exc)
    SETTINGS = Settings()
EVENTS = Asset(EVENTS_URI)


@dag(
    dag_id="policywatch_deliver",
    dag_display_name="PolicyWatch: send alerts",
    # After every source run that queued alerts, and every 15 minutes: a refused alert's next try
    # (alerts.outbox.REFUSAL_BACKOFF) and the pending-alert alarm need no new event to come round.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/15 * * * *", timezone="UTC"), assets=[EVENTS]
    ),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(SETTINGS),
    on_failure_callback=run_failure_callback(),
    doc_md="Sends the pending alert e-mails whenever a source DAG has queued alerts, and every 15 "
    "minutes (refused messages are retried for hours; a run with nothing pending is skipped); red "
    "while alerts wait longer than POLICYWATCH_ALERT_PENDING_ALARM_HOURS (6).",
    tags=["policywatch", "alerts"],
)
def deliver_dag() -> None:
    @task
    def deliver() -> dict[str, Any]:
        from policywatch import tasks

        report = tasks.deliver(CONFIG_PATH)
        if not report["alerts_sent"] and not report["pending"] and not report["failed"]:
            raise AirflowSkipException("nothing pending")  # a quarter-hour's timer with nothing to do
        return report

    deliver()


@dag(
    dag_id="policywatch_digest",
    dag_display_name="PolicyWatch: send digests",
    schedule="@hourly",  # each subscriber's digest goes at their local hour, once a local day
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(SETTINGS),
    on_failure_callback=run_failure_callback(),
    doc_md="Sends the digests that are due (each subscriber's local hour, once a local day).",
    tags=["policywatch", "alerts"],
)
def digest_dag() -> None:
    @task
    def digest() -> dict[str, Any]:
        from policywatch import tasks

        return tasks.digest(CONFIG_PATH)

    digest()


deliver_dag()
digest_dag()
