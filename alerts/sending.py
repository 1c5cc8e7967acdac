"""The one send loop of the outbox: immediate alerts (alerts.deliver) and digests (alerts.digest).

`send_queue(factory, settings, queue, now, report)` opens one SMTP session and sends what `queue`
hands it, one `Outgoing` message at a time; the queue decides what differs between the kinds: which
rows it claims and when (an alert's row just before it is sent; a subscriber's digest rows all at
once, cut into batches by Message-ID), how a message is built, and what happens to what it has not
handed out yet when the server goes away. The loop keeps the outbox's guarantees for all of them:

* a message is sent only for rows this pass holds (claimed with `owner`, alerts.outbox), and its
  rows are marked sent, with the record of the message, only after the server accepted it;
* an unreachable server (at connect or mid-pass) ends the pass: the message in hand is released
  with the error, the queue leaves the rest pending, nothing is lost and nothing is sent twice;
* a message the server refuses is released with the error (a 5xx counts towards REFUSAL_BACKOFF
  and MAX_REJECTIONS), the others go on; so does a message that failed to render.

Operator notices are not sent here: alerts.notices.send_notice is one best-effort message with no
outbox row (a retry would repeat it), and policywatch.health.deliver_notices keeps its own
operator_notices table, with no lease or refusal backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from alerts import outbox
from alerts.smtp import SmtpMailer, SmtpRejected, SmtpSettings, SmtpUnavailable

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


@dataclass
class Outgoing:
    """One message to one recipient, for outbox rows the pass holds under `owner`."""

    kind: str  # the sent-mail record's kind: "alert" or "digest"
    row_ids: Sequence[int]
    owner: str
    recipient: str
    subscriber_id: int
    event_ids: Sequence[int]
    # Renders the message; called just before sending (Jinja2 and the database work stay per message,
    # and an exception releases only these rows).
    build: Callable[[], EmailMessage]
    label: str  # names the message in the log: "alert 12", "the digest for subscriber 3"
    sent: bool = False  # set by send_queue once the server accepted it and its rows were marked


class MailQueue(Protocol):
    """What one kind of outbox sends in a pass."""

    def messages(self) -> Iterator[Outgoing]:
        """The messages to send, each claimed as the loop asks for it (a pass that stops early
        has claimed nothing it did not try)."""
        ...

    def unavailable(self, error: str) -> None:
        """The server cannot be reached (before the first message or after any): leave every row
        this queue has not handed out yet, or holds beyond the message in hand, pending with `error`."""
        ...


def send_queue(
    factory: sessionmaker[Session],
    settings: SmtpSettings,
    queue: MailQueue,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Send `queue`'s messages over one SMTP session, counting into `report`."""
    from alerts.render import sent_record  # Jinja2: only when there is mail to send

    try:
        mailer = SmtpMailer(settings)
        mailer.connect()
    except SmtpUnavailable as exc:
        report.error = f"SMTP server unavailable: {exc}"
        queue.unavailable(report.error)
        return
    with mailer:
        for item in queue.messages():
            try:
                message = item.build()
            except Exception as exc:  # a rendering bug must not hold back the other messages
                log.exception("rendering %s failed", item.label)
                outbox.release(
                    factory, item.row_ids, item.owner, f"rendering failed: {type(exc).__name__}: {exc}"
                )
                continue
            try:
                mailer.send(message, [item.recipient])
            except SmtpUnavailable as exc:
                report.error = f"SMTP server unavailable: {exc}"
                outbox.release(factory, item.row_ids, item.owner, report.error)
                queue.unavailable(report.error)
                return
            except SmtpRejected as exc:
                report.failed += outbox.release(
                    factory, item.row_ids, item.owner, f"refused: {exc}", permanent=exc.permanent, now=now
                )
                log.warning("%s to %s refused: %s", item.label, item.recipient, exc)
                continue
            report.messages_sent += 1
            record = sent_record(
                message, item.kind, item.recipient, now, item.subscriber_id, list(item.event_ids)
            )
            marked = outbox.mark_sent(factory, item.row_ids, item.owner, now, record)
            report.alerts_sent += marked
            item.sent = True
            if marked != len(item.row_ids):
                log.warning("%s was sent after its lease expired", item.label)
