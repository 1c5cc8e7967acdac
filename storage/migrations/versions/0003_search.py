"""search index over current version text, and the indexes the analyst web app's queries need

SQLite: an FTS5 table with the trigram tokenizer (substring search for Chinese, which has no word
boundaries) over the *current* version of every document. It is an external-content table on
document_versions (rowid = version id), so the text is not stored twice; triggers on documents keep
it in step with documents.current_version_id. Trigram matching needs at least 3 characters: shorter
queries fall back to LIKE (storage.queries).

PostgreSQL: pg_trgm GIN indexes on document_versions.normalized_text and title, used by LIKE.

These are derived objects, not part of the models: storage/migrations/env.py keeps autogenerate from
proposing to drop them (SEARCH_OBJECTS there).

Revision ID: 0003_search
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_search"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_TABLE = "document_search"

_SQLITE_UP = [
    f"""CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(
        title, normalized_text,
        tokenize = 'trigram',
        content = 'document_versions', content_rowid = 'id'
    )""",
    # Existing stores: index every document's current version.
    f"""INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
        SELECT v.id, v.title, v.normalized_text
        FROM documents AS d JOIN document_versions AS v ON v.id = d.current_version_id""",
    f"""CREATE TRIGGER {FTS_TABLE}_document_insert AFTER INSERT ON documents
        WHEN NEW.current_version_id IS NOT NULL
        BEGIN
            INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
            SELECT id, title, normalized_text FROM document_versions WHERE id = NEW.current_version_id;
        END""",
    # External content: removing a row needs the values it was indexed with; versions never change.
    f"""CREATE TRIGGER {FTS_TABLE}_document_update AFTER UPDATE OF current_version_id ON documents
        WHEN OLD.current_version_id IS NOT NEW.current_version_id
        BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, normalized_text)
            SELECT 'delete', id, title, normalized_text FROM document_versions
            WHERE id = OLD.current_version_id;
            INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
            SELECT id, title, normalized_text FROM document_versions WHERE id = NEW.current_version_id;
        END""",
    f"""CREATE TRIGGER {FTS_TABLE}_document_delete AFTER DELETE ON documents
        WHEN OLD.current_version_id IS NOT NULL
        BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, normalized_text)
            SELECT 'delete', id, title, normalized_text FROM document_versions
            WHERE id = OLD.current_version_id;
        END""",
]

_SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_document_delete",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_document_update",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_document_insert",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
]

_POSTGRES_UP = [
    # Trusted extension since PostgreSQL 13: the database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_document_versions_text_trgm ON document_versions "
    "USING gin (normalized_text gin_trgm_ops)",
    "CREATE INDEX ix_document_versions_title_trgm ON document_versions USING gin (title gin_trgm_ops)",
]

_POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_document_versions_title_trgm",
    "DROP INDEX IF EXISTS ix_document_versions_text_trgm",
]

# Plain indexes for the web app: reposts of a document, and change lists filtered by kind or
# relevance that read newest first.
_INDEXES = [
    ("ix_documents_republished_of_id", "documents", "republished_of_id"),
    ("ix_change_events_kind_detected", "change_events", "kind, detected_at"),
    ("ix_change_events_relevant_detected", "change_events", "relevant, detected_at"),
    ("ix_fetch_attempts_source_fetched", "fetch_attempts", "source_id, fetched_at"),
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, table, columns in _INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} ({columns})")
    statements = {"sqlite": _SQLITE_UP, "postgresql": _POSTGRES_UP}.get(dialect, [])
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": _SQLITE_DOWN, "postgresql": _POSTGRES_DOWN}.get(dialect, []):
        op.execute(statement)
    for name, _, _ in reversed(_INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
