"""document_versions.extractor_revision, version_reextractions, and search over rewritten versions

extractor_revision: extraction.EXTRACTOR_REVISION of the extractor that read a version's text. Every
version stored before this migration was read by revision 1 and gets "1": the column's server
default, which both databases give existing rows without rewriting them (SQLite's ADD COLUMN,
PostgreSQL 11+'s constant default), and which a row inserted by code that does not know the column
(an older worker during an upgrade) gets too; the cycle sets it explicitly. `policywatch reextract`
(policywatch.reextract) re-reads the stored raw pages of older versions with the current extractor
and rewrites their text; what a rewritten version held before is kept in version_reextractions.

Search: until now versions were never updated, so SQLite's FTS5 index (an external-content table,
0003/0007) only had triggers for insert and delete. A rewritten version must be found by its new
text and no longer by its old one: a trigger on UPDATE of title / normalized_text removes the old
values from the index and adds the new ones. (PostgreSQL's pg_trgm indexes follow updates by
themselves.)

Revision ID: 0008_extractor_revision
Revises: 0007_search_every_version
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0008_extractor_revision"
down_revision: str | None = "0007_search_every_version"  # needs 0003/0007's search table
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FTS_TABLE = "document_search"

# External content: the 'delete' must carry the values the row was indexed with (OLD's).
_SQLITE_UP = [
    f"""CREATE TRIGGER {FTS_TABLE}_version_update AFTER UPDATE OF title, normalized_text ON document_versions
        WHEN OLD.title IS NOT NEW.title OR OLD.normalized_text IS NOT NEW.normalized_text
        BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, normalized_text)
            VALUES ('delete', OLD.id, OLD.title, OLD.normalized_text);
            INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
            VALUES (NEW.id, NEW.title, NEW.normalized_text);
        END""",
]

_SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS {FTS_TABLE}_version_update"]


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (batch mode copying the table would drop 0007's triggers).
    op.add_column(
        "document_versions",
        sa.Column("extractor_revision", sa.String(length=16), server_default="1", nullable=True),
    )
    op.create_table(
        "version_reextractions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("version_id", BigId, nullable=False),
        sa.Column("at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("from_revision", sa.String(length=16), nullable=True),
        sa.Column("to_revision", sa.String(length=16), nullable=False),
        sa.Column("old_content_hash", sa.String(length=64), nullable=False),
        sa.Column("new_content_hash", sa.String(length=64), nullable=False),
        sa.Column("old_title", sa.Text(), nullable=False),
        sa.Column("old_text", sa.LargeBinary(), nullable=False),
        sa.Column("old_normalized_text", sa.LargeBinary(), nullable=False),
        sa.Column("old_doc_number", sa.String(length=200), nullable=True),
        sa.Column("old_issuer", sa.String(length=300), nullable=True),
        sa.Column("old_published_at", sa.String(length=10), nullable=True),
        sa.Column("old_extraction_method", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["document_versions.id"],
            name=op.f("fk_version_reextractions_version_id_document_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_reextractions")),
    )
    op.create_index(
        op.f("ix_version_reextractions_version_id"), "version_reextractions", ["version_id"], unique=False
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
    op.drop_index(op.f("ix_version_reextractions_version_id"), table_name="version_reextractions")
    op.drop_table("version_reextractions")
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: copying the table would drop 0007's search triggers with it (SQLite 3.35+).
        op.execute("ALTER TABLE document_versions DROP COLUMN extractor_revision")
    else:
        op.drop_column("document_versions", "extractor_revision")
