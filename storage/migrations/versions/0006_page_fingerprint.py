"""documents.page_fingerprint and documents.version_seen_at: what an unchanged check writes

page_fingerprint: the fingerprint of the page the current version was read from. A refetched page
with the same fingerprint differs only in page chrome and is not extracted again (see
extraction.equivalence). Existing documents start without one: their next fetch is read in full
once and stores it.
version_seen_at: when the current version was last seen, written by every check instead of the
version row (whose text makes a rewrite expensive); NULL: the version row's last_seen_at holds.

Revision ID: 0006_page_fingerprint
Revises: 0005_minhash_v2
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0006_page_fingerprint"
down_revision: str | None = "0005_minhash_v2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("page_fingerprint", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("version_seen_at", storage.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("version_seen_at")
        batch.drop_column("page_fingerprint")
