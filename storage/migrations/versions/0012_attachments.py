"""Attachments: a file linked from a document's body is a document of its own

documents.attachment_of: the page (document id) whose body links the file (PDF, Word, WPS, OFD,
spreadsheet), NULL for pages. change_events.attachment_of: the same, copied when the event is made,
so `changes --json` and the web app list it without a join.

Revision ID: 0012_attachments
Revises: 0011_source_health
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_attachments"
down_revision: str | None = "0011_source_health"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMNs (a batch-mode copy would drop the search triggers); no foreign key, which
    # SQLite cannot add to an existing table.
    op.add_column("documents", sa.Column("attachment_of", BigId, nullable=True))
    op.add_column("change_events", sa.Column("attachment_of", BigId, nullable=True))
    op.create_index(op.f("ix_documents_attachment_of"), "documents", ["attachment_of"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_documents_attachment_of"), table_name="documents")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE documents DROP COLUMN attachment_of")
        op.execute("ALTER TABLE change_events DROP COLUMN attachment_of")
    else:
        op.drop_column("documents", "attachment_of")
        op.drop_column("change_events", "attachment_of")
