"""search by issuer: an index over (issuer, id) of document_versions

Searching "国家数据局" compared every current version's issuer, and on SQLite that meant reading each
version row past its long text columns (issuer comes after them): 20 ms at 10,000 documents. The
index is covering for policywatch.search (issuer and the version id), so a LIKE scans it alone. Like the
other search indexes it is not in the models (storage.queries.SEARCH_INDEXES).

Revision ID: 0019_issuer_index
Revises: 0018_delivery_backoff
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_issuer_index"
down_revision: str | None = "0018_delivery_backoff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_document_versions_issuer_id", "document_versions", ["issuer", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_document_versions_issuer_id", table_name="document_versions")
