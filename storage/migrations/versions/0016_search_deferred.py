"""search index: versions are indexed in bulk after their batch commits, not row by row

0007's trigger indexed each version inside the transaction that recorded it, so every commit of the
version stage wrote (and soon merged) a small FTS5 segment: ~15 ms a changed document in the
benchmark, on the single writer's critical path. Now the trigger only notes the version in
`document_search_pending`; `storage.search_index.index_pending_versions` indexes every pending
version with one INSERT ... SELECT (one segment) after a batch of documents is done, and searches
run it first, so nothing is ever missing from a search. A crash between the two leaves the versions
pending (they are noted in the transaction that records them): the next call indexes them.
(PostgreSQL's pg_trgm indexes are maintained by the server: nothing to do there.)

Revision ID: 0016_search_deferred
Revises: 0012_attachments
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_search_deferred"
down_revision: str | None = "0012_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_TABLE = "document_search"
PENDING = f"{FTS_TABLE}_pending"  # the FTS_TABLE prefix: storage.queries.include_object skips it

_SQLITE_UP = [
    f"CREATE TABLE IF NOT EXISTS {PENDING} (version_id INTEGER PRIMARY KEY)",
    # FTS5 writes a segment whenever its in-memory term buffer passes `hashsize` (1 MB by default,
    # about 10 policy texts in trigrams), so a bulk insert made dozens of small segments that the
    # next write then had to merge (0.9 s for 50 documents after a first cycle of 1,000). With 16
    # MB one batch is one segment: 1,000 documents index in 1.7 s instead of 3.3 s, and a batch
    # of 10 after them in 20 ms instead of 0.9 s. (Kept in the index's config table.)
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('hashsize', {16 * 1024 * 1024})",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_version_insert",
    f"""CREATE TRIGGER {PENDING}_insert AFTER INSERT ON document_versions
        BEGIN
            INSERT OR IGNORE INTO {PENDING}(version_id) VALUES (NEW.id);
        END""",
    # A version deleted before it was indexed: 0007's delete trigger would ask FTS5 to delete a
    # row it never had, which corrupts an external-content index: only indexed rows are deleted.
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_version_delete",
    f"""CREATE TRIGGER {FTS_TABLE}_version_delete AFTER DELETE ON document_versions
        BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, normalized_text)
            SELECT 'delete', OLD.id, OLD.title, OLD.normalized_text
            WHERE NOT EXISTS (SELECT 1 FROM {PENDING} WHERE version_id = OLD.id);
            DELETE FROM {PENDING} WHERE version_id = OLD.id;
        END""",
]

_SQLITE_DOWN = [
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('hashsize', {1024 * 1024})",
    # Index what is pending, then restore 0007's triggers.
    f"""INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
        SELECT v.id, v.title, v.normalized_text FROM document_versions v
        JOIN {PENDING} p ON p.version_id = v.id""",
    f"DROP TRIGGER IF EXISTS {PENDING}_insert",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_version_delete",
    f"DROP TABLE IF EXISTS {PENDING}",
    f"""CREATE TRIGGER {FTS_TABLE}_version_insert AFTER INSERT ON document_versions
        BEGIN
            INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
            VALUES (NEW.id, NEW.title, NEW.normalized_text);
        END""",
    f"""CREATE TRIGGER {FTS_TABLE}_version_delete AFTER DELETE ON document_versions
        BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, normalized_text)
            VALUES ('delete', OLD.id, OLD.title, OLD.normalized_text);
        END""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
