"""subscriber_preferences, store_identity and sent_mail (issue 17: subscribers who can see, tune and
leave their alerts)

subscriber_preferences: what a subscriber chose on the web app (opt-out by the RFC 8058 one-click
POST or the page, own filters, digest hour and zone, the generation of its signed token). It takes
precedence over the config for that address; a subscriber without a row follows the config, with
the digest at 08:00 Asia/Shanghai.

store_identity: one row made here with a random store id and secret. The store id goes into every
Message-ID (two installations never produce the same one, which deduplicating mail systems would
drop); the secret signs the unsubscribe tokens unless POLICYWATCH_SECRET_KEY is set. Messages already
sent keep their Message-ID (fixed on the outbox row at the first claim): a resend stays recognisable.

sent_mail: every mail the SMTP server accepted (alerts, digests, operator notices), as sent, for the
web app's Mail page.

Revision ID: 0010_subscriber_preferences
Revises: 0009_recheck_schedule, 0002_alerts (a branch of its own, whose subscribers table this needs)
Create Date: 2026-12-03
"""

import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0010_subscriber_preferences"
down_revision: str | tuple[str, ...] | None = (
    "0009_recheck_schedule",
    "0002_alerts",
)  # needs 0002's subscribers
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TYPE = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscriber_preferences",
        sa.Column("subscriber_id", BigId, nullable=False),
        sa.Column("opted_out_at", UTC_TYPE, nullable=True),
        sa.Column("opted_out_via", sa.String(length=32), nullable=True),
        sa.Column("custom", sa.Boolean(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=True),
        sa.Column("keywords", sa.JSON(), nullable=True),
        sa.Column("events", sa.JSON(), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=True),
        sa.Column("digest_hour", sa.Integer(), server_default="8", nullable=False),
        sa.Column("digest_timezone", sa.String(length=64), server_default="Asia/Shanghai", nullable=False),
        sa.Column("token_generation", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", UTC_TYPE, nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_preferences_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("subscriber_id", name=op.f("pk_subscriber_preferences")),
    )
    identity = op.create_table(
        "store_identity",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTC_TYPE, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_identity")),
    )
    # Made here, once, so every process that later reads the store sees the same identity.
    op.bulk_insert(
        identity,
        [
            {
                "id": 1,
                "store_id": uuid.uuid4().hex,
                "secret": secrets.token_hex(32),
                "created_at": datetime.now(UTC),
            }
        ],
    )
    op.create_table(
        "sent_mail",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subscriber_id", BigId, nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("event_ids", sa.JSON(), nullable=True),
        sa.Column("sent_at", UTC_TYPE, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_sent_mail_subscriber_id_subscribers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_mail")),
    )
    op.create_index(op.f("ix_sent_mail_sent_at"), "sent_mail", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sent_mail_sent_at"), table_name="sent_mail")
    op.drop_table("sent_mail")
    op.drop_table("store_identity")
    op.drop_table("subscriber_preferences")
