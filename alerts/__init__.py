"""alerts: subscriptions, the outbox, rendering and SMTP delivery of change alerts (CONTRACT.md).

The pipeline queues outbox rows in the transaction that records an event (`queue_alerts`); delivery
is separate and idempotent (`deliver_pending`, `send_due_digests`), so reruns, retries, crashes and
SMTP outages send every (subscriber, event) exactly once.
"""

from alerts.deliver import DeliveryReport, deliver_after_cycle, deliver_pending
from alerts.digest import send_due_digests
from alerts.smtp import (
    SmtpConfigError,
    SmtpSettings,
    parse_smtp_url,
    settings_from_airflow_connection,
    settings_from_env,
)
from alerts.subscriptions import ActiveSubscriber, active_subscribers, queue_alerts, sync_subscriptions

__all__ = [
    "ActiveSubscriber",
    "DeliveryReport",
    "SmtpConfigError",
    "SmtpSettings",
    "active_subscribers",
    "deliver_after_cycle",
    "deliver_pending",
    "parse_smtp_url",
    "queue_alerts",
    "send_due_digests",
    "settings_from_airflow_connection",
    "settings_from_env",
    "sync_subscriptions",
]
