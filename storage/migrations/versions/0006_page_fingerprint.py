"""documents.page_fingerprint: the fingerprint of the page the current version was read from

A refetched page with the same fingerprint differs only in page chrome and is not extracted again
(see extraction.equivalence). Existing documents start without one: their next fetch is read in
full once and stores it.

Revision ID: 0006_page_fingerprint
Revises: 0005_minhash_v2
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_page_fingerprint"
down_revision: str | None = "0005_minhash_v2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("page_fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("page_fingerprint")
