"""identity and reposts: MinHash LSH bands of each version's text

Revision ID: 0004_identity
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_identity"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "minhash_bands",
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.Column("version_id", BigId, nullable=False),
        sa.Column("document_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["document_versions.id"],
            name=op.f("fk_minhash_bands_version_id_document_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_minhash_bands_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("band_key", "version_id", name=op.f("pk_minhash_bands")),
    )
    op.create_index(op.f("ix_minhash_bands_version_id"), "minhash_bands", ["version_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_minhash_bands_version_id"), table_name="minhash_bands")
    op.drop_table("minhash_bands")
