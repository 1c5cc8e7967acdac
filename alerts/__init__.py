"""alerts: subscriptions, the outbox, rendering and SMTP delivery of change alerts (CONTRACT.md).

The pipeline queues outbox rows in the transaction that records an event (`queue_alerts`); delivery
is separate and idempotent (`deliver_pending`, `send_due_digests`), so reruns, retries, crashes and
SMTP outages send every (subscriber, event) exactly once.
"""

import importlib
from typing import Any

# Each name from the module that defines it, imported on first use: the pipeline needs only the
# outbox side, and rendering (Jinja2, the e-mail package) costs a cycle's start-up ~0.1 s for nothing.
_WHERE = {
    "DeliveryReport": "alerts.sending",
    "deliver_after_cycle": "alerts.deliver",
    "deliver_pending": "alerts.deliver",
    "send_due_digests": "alerts.digest",
    "preview_digest": "alerts.digest",
    "FailureNotifier": "alerts.notices",
    "send_notice": "alerts.notices",
    "SmtpConfigError": "alerts.smtp",
    "SmtpSettings": "alerts.smtp",
    "parse_smtp_url": "alerts.smtp",
    "settings_from_airflow_connection": "alerts.smtp",
    "settings_from_env": "alerts.smtp",
    "ActiveSubscriber": "alerts.subscriptions",
    "active_subscribers": "alerts.subscriptions",
    "queue_alerts": "alerts.subscriptions",
    "sync_subscriptions": "alerts.subscriptions",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'alerts' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "ActiveSubscriber",
    "DeliveryReport",
    "FailureNotifier",
    "SmtpConfigError",
    "SmtpSettings",
    "active_subscribers",
    "deliver_after_cycle",
    "deliver_pending",
    "parse_smtp_url",
    "preview_digest",
    "queue_alerts",
    "send_due_digests",
    "send_notice",
    "settings_from_airflow_connection",
    "settings_from_env",
    "sync_subscriptions",
]
