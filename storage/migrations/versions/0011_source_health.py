"""Source health (up / degraded / down) and the operator notices of its changes

sources.health_state / consecutive_failures / health_reason / health_since / health_cycle: whether
a source has quietly stopped working (policywatch.health): its listing failing or empty, every
page failing, challenges persisting, or most texts suddenly shrinking, for N cycles in a row.
health_cycle makes the update idempotent per cycle (an Airflow retry of the closing task).

operator_notices: one row per state change (degraded, recovered), written in the transaction
that changes the state and sent once to the operators (pending → sent), like the alert outbox.

A branch of its own from 0009 (storage.db.upgrade applies every head).

Revision ID: 0011_source_health
Revises: 0009_recheck_schedule
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0011_source_health"
down_revision: str | None = "0009_recheck_schedule"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COLUMNS = ("health_state", "consecutive_failures", "health_reason", "health_since", "health_cycle")


def upgrade() -> None:
    op.add_column(
        "sources", sa.Column("health_state", sa.String(length=16), server_default="up", nullable=False)
    )
    op.add_column(
        "sources", sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("sources", sa.Column("health_reason", sa.Text(), nullable=True))
    op.add_column(
        "sources", sa.Column("health_since", storage.models.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("sources", sa.Column("health_cycle", sa.String(length=64), nullable=True))
    op.create_table(
        "operator_notices",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.String(length=250), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_operator_notices_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_notices")),
    )
    op.create_index(op.f("ix_operator_notices_status"), "operator_notices", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_operator_notices_status"), table_name="operator_notices")
    op.drop_table("operator_notices")
    if op.get_bind().dialect.name == "sqlite":
        for column in _COLUMNS:  # not batch mode: a table copy would drop the search triggers
            op.execute(f"ALTER TABLE sources DROP COLUMN {column}")
    else:
        for column in _COLUMNS:
            op.drop_column("sources", column)
