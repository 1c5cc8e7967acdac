"""A source run that has not finished long after it was queued (policywatch.overdue): the Deadline
Alert's interval, and its callback as Airflow's triggerer calls it, against a real store (SQLite and
PostgreSQL) and a real SMTP server: one operator mail per overdue run, kept while SMTP is down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from policywatch.overdue import deadline_alert, overdue_after, source_overdue
from storage.db import ensure_schema, make_engine, session_factory, unit_of_work
from storage.models import OperatorNotice, Source
from tests.support.smtp import SmtpServer

OPERATOR = "ops@example.org"


@pytest.fixture
def store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    engine = make_engine(db_url)
    ensure_schema(engine)
    with unit_of_work(session_factory(engine)) as session:
        session.add(Source(id="ndrc", name="国家发展改革委 政策"))
    engine.dispose()
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("POLICYWATCH_OPERATOR_EMAILS", OPERATOR)
    yield db_url


def overdue_mails(server: SmtpServer) -> list[str]:
    return [
        m.header("Subject") for m in server.messages if m.header("X-Policywatch-Event") == "source-overdue"
    ]


def call_back(run_id: str) -> str:
    # What the triggerer passes (airflow.models.deadline.Deadline.handle_miss): the kwargs the DAG
    # gave the callback, and a context holding the run.
    context = {
        "dag_run": {"dag_run_id": run_id, "dag_id": "policywatch_ndrc", "queued_at": "2026-12-04T01:00:00Z"},
        "deadline": {"id": "d1", "deadline_time": "2026-12-04T04:00:00Z"},
    }
    return asyncio.run(
        source_overdue(source_id="ndrc", after_s=3 * 3600, schedule="@hourly", context=context)
    )


def test_the_deadline_is_n_schedule_intervals_after_the_run_was_queued() -> None:
    assert overdue_after("@hourly", 3) == timedelta(hours=3)
    assert overdue_after("0 9 * * 1-5", 2) == timedelta(days=2)  # an irregular cron: its shortest gap
    assert overdue_after("*/30 * * * *", 1.5) == timedelta(minutes=45)
    assert overdue_after("@hourly", 0) is None  # switched off
    assert overdue_after("@once", 3) is None  # a schedule that does not repeat has no deadline
    assert overdue_after("@hourly", float("nan")) is None
    alert = deadline_alert("ndrc", "@daily", 3)
    assert alert.interval == timedelta(days=3)
    assert alert.callback.path == "policywatch.overdue.source_overdue"
    assert alert.callback.kwargs == {"source_id": "ndrc", "after_s": 3 * 86400.0, "schedule": "@daily"}
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert deadline_alert("ndrc", "@daily", 0) is None


def test_an_overdue_run_mails_the_operators_once(store: str, smtp: SmtpServer, monkeypatch) -> None:
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", smtp.url)
    assert call_back("scheduled__2026-12-04T01:00:00+00:00") == "sent 1, pending 0"
    [subject] = overdue_mails(smtp)
    assert "ndrc" in subject and "overdue" in subject
    [mail] = [m for m in smtp.messages if m.header("X-Policywatch-Event") == "source-overdue"]
    assert OPERATOR in mail.rcpt_tos and mail.header("X-Policywatch-Source") == "ndrc"
    text = mail.part("plain")
    assert "3 times its schedule" in text and "国家发展改革委" in text
    # The triggerer may deliver the callback again (a restart): the run is noticed once.
    assert call_back("scheduled__2026-12-04T01:00:00+00:00") == "sent 0, pending 0"
    assert len(overdue_mails(smtp)) == 1
    # Another run that is overdue is another mail.
    assert call_back("manual__2026-12-04T02:00:00+00:00") == "sent 1, pending 0"
    assert len(overdue_mails(smtp)) == 2


def test_with_smtp_down_the_notice_waits_and_is_sent_once_later(
    store: str, smtp: SmtpServer, monkeypatch
) -> None:
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", smtp.url)
    smtp.stop()
    report = call_back("scheduled__run-1")
    assert report.startswith("sent 0, pending 1: ")  # and why
    smtp.start()
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", smtp.url)
    assert call_back("scheduled__run-1") == "sent 1, pending 0"  # the same run: sent, not queued again
    assert len(overdue_mails(smtp)) == 1
    engine = make_engine(store)
    with session_factory(engine)() as session:
        rows = session.scalars(select(OperatorNotice).where(OperatorNotice.kind == "overdue")).all()
    engine.dispose()
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1)]
