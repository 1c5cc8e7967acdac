"""host turns: one row per host, when its next request may start, shared by every worker

Politeness across Airflow workers (storage.host_turns.PostgresPacer): batches of one host may run on
several workers at once, and each request takes the host's row lock, waits until `next_at` (the
database server's clock) and sets it one interval after the request ended.

Revision ID: 0020_host_turns
Revises: 0019_issuer_index
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_host_turns"
down_revision: str | None = "0019_issuer_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_turns",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_host_turns")),
    )


def downgrade() -> None:
    op.drop_table("host_turns")
