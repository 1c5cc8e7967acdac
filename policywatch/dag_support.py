"""What both DAG files share (dags/policywatch_dags.py, dags/policywatch_alerts.py): the events
Asset's URI, the start date, and the default arguments with the operators' failure mail.

No Airflow import at module level: the DAG files import what they build with.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from policywatch.config import Settings

EVENTS_URI = "policywatch://events"
START = datetime(2026, 1, 1, tzinfo=UTC)


def operator_notifier() -> Any:
    """Mail the operators when a task has failed after its retries (needs POLICYWATCH_OPERATOR_EMAILS),
    through the alerts' SMTP path (POLICYWATCH_SMTP_URL, else smtp_default read as Airflow reads it),
    recorded on the web app's Mail page."""
    from alerts.notices import FailureNotifier, operator_emails

    emails = operator_emails()
    return FailureNotifier(emails) if emails else None


def default_args(settings: Settings) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": "policywatch",
        "retries": 3,
        "retry_delay": timedelta(seconds=settings.task_retry_delay_s),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        # A backstop: a hostile server can hold a task no longer than this (settings.task_timeout_s).
        "execution_timeout": timedelta(seconds=settings.task_timeout_s),
    }
    return args


def run_failure_callback() -> Any:
    """The DAGs' `on_failure_callback`: one mail to the operators per failed run (a per-task
    callback sent one per failed mapped batch: 50 for an outage of 50 batches), None without
    POLICYWATCH_OPERATOR_EMAILS."""
    notifier = operator_notifier()
    return UnlessDegraded(notifier) if notifier is not None else None


class UnlessDegraded:
    """The operators' mail for a failed task, except a degraded source's: that one has its own
    notices (policywatch.health), one when it degrades and one when it recovers, not one per run."""

    def __init__(self, notifier: Any) -> None:
        self.notifier = notifier

    def __call__(self, context: Any) -> None:
        from policywatch.health import SourceDegraded

        if isinstance(context.get("exception"), SourceDegraded):
            return
        ti = context.get("ti") or context.get("task_instance")
        if "exception" not in context and getattr(ti, "task_id", None) == "source_health":
            return  # a run that failed at the end, on its health check: the source is degraded
        self.notifier(context)
