"""Send the immediate alerts that are pending: `deliver_pending(engine, smtp_settings)`.

One SMTP session per pass (the loop is alerts.sending's, shared with the digests); each row is
claimed just before it is sent (see alerts.outbox). An unreachable server ends the pass with every
alert still pending (and the error recorded on it); a message the server refuses stays pending with
the error, the others go on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime
from email.message import EmailMessage
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts import outbox
from alerts.sending import DeliveryReport, Outgoing, send_queue
from alerts.smtp import SmtpSettings, settings_from_env
from storage.db import session_factory
from storage.models import ChangeEvent, utcnow

__all__ = ["DeliveryReport", "deliver_after_cycle", "deliver_pending"]

log = logging.getLogger(__name__)


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
        send_queue(factory, smtp_settings, _ImmediateAlerts(factory, smtp_settings, due, now), now, report)
    report.pending = outbox.count_open(factory, "immediate")
    return report


class _ImmediateAlerts:
    """The due immediate rows for alerts.sending: one message per row, each row claimed just
    before it is sent (so a pass that stops early holds nothing it did not try)."""

    def __init__(
        self, factory: sessionmaker[Session], settings: SmtpSettings, due: Sequence[int], now: datetime
    ) -> None:
        from alerts.identity import store_identity

        self.factory, self.settings, self.now = factory, settings, now
        self.waiting = deque(due)  # not claimed yet, oldest first
        self.owner = outbox.new_owner()
        self.identity = store_identity(factory)

    def messages(self) -> Iterator[Outgoing]:
        while self.waiting:
            row_id = self.waiting.popleft()
            claim = outbox.claim_one(
                self.factory, row_id, self.owner, self.now, self.settings.mail_domain, self.identity.store_id
            )
            if claim is None:
                continue  # another deliverer has it, or it was sent meanwhile
            yield Outgoing(
                kind="alert",
                row_ids=[claim.id],
                owner=self.owner,
                recipient=claim.email,
                subscriber_id=claim.subscriber_id,
                event_ids=[claim.event_id],
                build=partial(self._message, claim),
                label=f"alert {claim.id}",
            )

    def _message(self, claim: outbox.Claimed) -> EmailMessage:
        from alerts.identity import make_token
        from alerts.preferences import token_generation
        from alerts.render import SubscriberLinks, alert_message, build_event_view

        settings = self.settings
        with self.factory() as session:
            event = session.get(ChangeEvent, claim.event_id)
            assert event is not None
            token = make_token(
                self.identity, claim.subscriber_id, token_generation(session, claim.subscriber_id)
            )
            return alert_message(
                build_event_view(session, event, settings.public_url, claim.reason),
                claim.email,
                settings.mail_from,
                claim.message_id,
                self.now,
                SubscriberLinks.of(settings.public_url, token),
            )

    def unavailable(self, error: str) -> None:
        # Not claimed, so still pending: they only note the attempt and why it failed.
        outbox.note_unavailable(self.factory, list(self.waiting), error, self.now)
        log.warning("%s; %d alert(s) not tried stay pending", error, len(self.waiting))


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
