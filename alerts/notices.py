"""Operator notices (a task failed, a source is degraded) through the same path as alerts.

Same SMTP settings (POLICYWATCH_SMTP_URL, else the Airflow connection read as Airflow reads it:
alerts.smtp.settings_from_airflow_connection), same message shape and header hygiene, and the same
record of what was sent (the web app's Mail page). A notice is best effort: it is not queued in
the outbox (it reports the moment, and a retry would repeat it), and failing to send one never
fails the caller.

Under Airflow: `on_failure_callback=alerts.notices.FailureNotifier(["ops@example.org"])`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from sqlalchemy import Engine

from alerts.render import clean_text, header_text, sent_record
from alerts.smtp import SmtpMailer, SmtpRejected, SmtpSettings, SmtpUnavailable
from storage.db import session_factory, unit_of_work
from storage.models import utcnow

log = logging.getLogger(__name__)


def notice_message(
    settings: SmtpSettings, to: Sequence[str], subject: str, text: str, html: str | None, now: datetime
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = header_text(f"[PolicyWatch] {subject}", 250)
    msg["From"] = header_text(settings.mail_from, 320)
    msg["To"] = header_text(", ".join(to), 1000)
    msg["Date"] = format_datetime(now)
    # A notice is not a (subscriber, event) pair: a random id, on the sender's domain.
    msg["Message-ID"] = f"<policywatch.notice.{uuid.uuid4().hex}@{settings.mail_domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Policywatch-Event"] = "notice"
    msg.set_content(clean_text(text), charset="utf-8")
    if html:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def send_notice(
    engine: Engine,
    settings: SmtpSettings | None,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Mail a notice to the operators; True when the server accepted it (then it is on the Mail page)."""
    to = [a.strip() for a in to if a and a.strip()]
    if settings is None or not to:
        log.warning(
            "operator notice not sent (%s): %s", "no SMTP settings" if to else "no recipients", subject
        )
        return False
    now = now or utcnow()
    message = notice_message(settings, to, subject, text, html, now)
    try:
        with SmtpMailer(settings) as mailer:
            mailer.send(message, list(to))
    except (SmtpUnavailable, SmtpRejected) as exc:
        log.error("operator notice not sent: %s (%s)", exc, subject)
        return False
    try:
        with unit_of_work(session_factory(engine)) as session:
            for recipient in to:
                session.add(sent_record(message, "notice", recipient, now))
    except Exception:  # the notice went out; losing its record must not hide why it was sent
        log.exception("operator notice sent but not recorded")
    return True


class FailureNotifier:
    """An Airflow `on_failure_callback` that mails the operators through PolicyWatch's SMTP path.

    Replaces Airflow's SmtpNotifier, which read the `smtp_default` connection on its own terms.
    Settings come from alerts.smtp.configured_settings (POLICYWATCH_SMTP_URL, else the connection
    POLICYWATCH_SMTP_CONN_ID names), the same as alert delivery.
    """

    def __init__(self, to: Sequence[str], settings: Callable[[], SmtpSettings | None] | None = None) -> None:
        self.to = list(to)
        self._settings = settings

    def __call__(self, context: dict[str, Any]) -> None:
        try:
            self.notify(context)
        except Exception:  # a callback that raises hides the task's own failure in the log
            log.exception("operator notice failed")

    def notify(self, context: dict[str, Any]) -> bool:
        from alerts.smtp import configured_settings
        from storage.db import make_engine

        settings_of = self._settings if self._settings is not None else configured_settings
        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?")
        task_id = getattr(ti, "task_id", "?")
        tries = getattr(ti, "try_number", "?")
        error = " ".join(str(context.get("exception") or "").split())[:2000]
        log_url = getattr(ti, "log_url", "") or ""
        if "exception" not in context and "reason" in context:
            # A DAG's callback: once per failed run, however many of its mapped batches failed.
            reason = " ".join(str(context.get("reason") or "").split())[:500]
            subject = f"{dag_id}: run failed"
            text = (
                f"DAG {dag_id}, run {context.get('run_id', '?')} failed ({reason}); the last task to end "
                f"was {task_id}.\n\nLog: {log_url}\n"
            )
        else:
            subject = f"{dag_id}: {task_id} failed"
            text = f"DAG {dag_id}, task {task_id} failed after {tries} tries.\n\nError: {error}\n\nLog: {log_url}\n"
        engine = make_engine()
        try:
            return send_notice(engine, settings_of(), self.to, subject, text)
        finally:
            engine.dispose()


def operator_emails(environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [e.strip() for e in env.get("POLICYWATCH_OPERATOR_EMAILS", "").split(",") if e.strip()]
