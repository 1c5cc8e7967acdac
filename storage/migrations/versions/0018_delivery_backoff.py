"""delivery backoff: a refused alert is retried later, for hours, not three times in a minute

alert_outbox.retry_at: when a message the SMTP server refused (5xx) may be tried again (NULL: now).

Revision ID: 0018_delivery_backoff
Revises: 0017_analysts
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0018_delivery_backoff"
down_revision: str | None = "0017_analysts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TYPE = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("alert_outbox", sa.Column("retry_at", UTC_TYPE, nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE alert_outbox DROP COLUMN retry_at")
    else:
        op.drop_column("alert_outbox", "retry_at")
