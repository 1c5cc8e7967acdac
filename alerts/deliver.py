"""Send the immediate alerts that are pending: `deliver_pending(engine, smtp_settings)`.

One SMTP session per pass; each row is claimed just before it is sent (see alerts.outbox). An
unreachable server ends the pass with every alert still pending (and the error recorded on it); a
message the server refuses stays pending with the error, the others go on.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts import outbox
from alerts.smtp import SmtpMailer, SmtpRejected, SmtpSettings, SmtpUnavailable, settings_from_env
from storage.db import session_factory
from storage.models import ChangeEvent, utcnow

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    configured: bool = True  # False: no SMTP settings (POLICYWATCH_SMTP_URL unset)
    messages_sent: int = 0  # e-mails the server accepted
    alerts_sent: int = 0  # outbox rows marked sent (a digest carries several)
    failed: int = 0  # rows given up this pass (refused MAX_REJECTIONS times)
    pending: int = 0  # rows of this kind still open after the pass
    error: str | None = None  # why the pass stopped early (server unreachable, ...)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def deliver_pending(
    engine: Engine, smtp_settings: SmtpSettings | None, *, now: datetime | None = None
) -> DeliveryReport:
    """Send every pending immediate alert once; `now` (for tests) decides which leases expired."""
    factory = session_factory(engine)
    if smtp_settings is None:
        return DeliveryReport(configured=False, pending=outbox.count_open(factory, "immediate"))
    now = now or utcnow()
    report = DeliveryReport()
    due = outbox.due_ids(factory, "immediate", now)
    if due:
        _send_rows(factory, smtp_settings, due, now, report)
    report.pending = outbox.count_open(factory, "immediate")
    return report


def _send_rows(
    factory: sessionmaker[Session],
    settings: SmtpSettings,
    due: list[int],
    now: datetime,
    report: DeliveryReport,
) -> None:
    from alerts.identity import make_token, store_identity
    from alerts.preferences import token_generation
    from alerts.render import (  # Jinja2: only when there is mail to send
        SubscriberLinks,
        alert_message,
        build_event_view,
        sent_record,
    )

    owner = outbox.new_owner()
    identity = store_identity(factory)
    try:
        mailer = SmtpMailer(settings)
        mailer.connect()
    except SmtpUnavailable as exc:
        report.error = f"SMTP server unavailable: {exc}"
        outbox.note_unavailable(factory, due, report.error, now)
        log.warning("%s; %d alert(s) stay pending", report.error, len(due))
        return
    with mailer:
        for position, row_id in enumerate(due):
            claim = outbox.claim_one(factory, row_id, owner, now, settings.mail_domain, identity.store_id)
            if claim is None:
                continue  # another deliverer has it, or it was sent meanwhile
            try:
                with factory() as session:
                    event = session.get(ChangeEvent, claim.event_id)
                    assert event is not None
                    token = make_token(
                        identity, claim.subscriber_id, token_generation(session, claim.subscriber_id)
                    )
                    message = alert_message(
                        build_event_view(session, event, settings.public_url, claim.reason),
                        claim.email,
                        settings.mail_from,
                        claim.message_id,
                        now,
                        SubscriberLinks.of(settings.public_url, token),
                    )
            except Exception as exc:  # a rendering bug must not hold back the other alerts
                log.exception("rendering alert %d failed", claim.id)
                outbox.release(factory, [claim.id], owner, f"rendering failed: {type(exc).__name__}: {exc}")
                continue
            try:
                mailer.send(message, [claim.email])
            except SmtpUnavailable as exc:
                report.error = f"SMTP server unavailable: {exc}"
                outbox.release(factory, [claim.id], owner, report.error)
                outbox.note_unavailable(factory, due[position + 1 :], report.error, now)
                log.warning("%s; the remaining alerts stay pending", report.error)
                return
            except SmtpRejected as exc:
                report.failed += outbox.release(
                    factory, [claim.id], owner, f"refused: {exc}", permanent=exc.permanent, now=now
                )
                log.warning("alert %d to %s refused: %s", claim.id, claim.email, exc)
                continue
            report.messages_sent += 1
            record = sent_record(message, "alert", claim.email, now, claim.subscriber_id, [claim.event_id])
            marked = outbox.mark_sent(factory, [claim.id], owner, now, record)
            report.alerts_sent += marked
            if marked != 1:
                log.warning("alert %d was sent after its lease expired", claim.id)


def deliver_after_cycle(engine: Engine) -> DeliveryReport:
    """What `run` does after its sources: deliver with the environment's settings, never raising
    for an SMTP or settings problem (the cycle's work is done; the alerts wait for the next run)."""
    factory = session_factory(engine)
    try:
        settings = settings_from_env()
    except ValueError as exc:
        log.error("alerts not sent: %s", exc)
        return DeliveryReport(
            configured=False, pending=outbox.count_open(factory, "immediate"), error=str(exc)
        )
    try:
        return deliver_pending(engine, settings)
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, DBAPIError):
            raise
        log.exception("delivering alerts failed")
        return DeliveryReport(
            configured=settings is not None,
            pending=outbox.count_open(factory, "immediate"),
            error=f"{type(exc).__name__}: {exc}",
        )
