"""search index: every version is indexed once, when it is recorded; searches keep current versions

0003 indexed current versions only, so a changed document cost the FTS5 index a 'delete' of its
old text (re-tokenising it) on top of the insert: ~25 ms a change in SQLite against ~5 ms for the
insert alone. Now a trigger on document_versions indexes each version as it is inserted, nothing
is ever removed but with its version, and storage.queries keeps the matches that are current
versions. FTS5 merges segments less eagerly (automerge 16). (PostgreSQL's pg_trgm indexes always
covered every version: nothing to do there.)

Revision ID: 0007_search_every_version
Revises: 0006_page_fingerprint, 0003_search
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_search_every_version"
down_revision: str | tuple[str, ...] | None = ("0006_page_fingerprint", "0003_search")  # needs 0003's table
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_TABLE = "document_search"
_NOT_CURRENT = "id NOT IN (SELECT current_version_id FROM documents WHERE current_version_id IS NOT NULL)"

_SQLITE_UP = [
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_document_delete",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_document_update",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_document_insert",
    # The current versions are indexed already: add the others.
    f"""INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
        SELECT id, title, normalized_text FROM document_versions WHERE {_NOT_CURRENT}""",
    f"""CREATE TRIGGER {FTS_TABLE}_version_insert AFTER INSERT ON document_versions
        BEGIN
            INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
            VALUES (NEW.id, NEW.title, NEW.normalized_text);
        END""",
    # FTS5 merges its segments when `automerge` of them pile up on one level (default 4): at 16,
    # indexing a new version costs about half as much (7.7 against 18 ms in the benchmark store,
    # 25 versions per transaction), for a few more segments to read per query.
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('automerge', 16)",
    # Versions are never updated; one that is deleted leaves the index with it.
    f"""CREATE TRIGGER {FTS_TABLE}_version_delete AFTER DELETE ON document_versions
        BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, normalized_text)
            VALUES ('delete', OLD.id, OLD.title, OLD.normalized_text);
        END""",
]

_SQLITE_DOWN = [
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('automerge', 4)",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_version_delete",
    f"DROP TRIGGER IF EXISTS {FTS_TABLE}_version_insert",
    f"""INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, normalized_text)
        SELECT 'delete', id, title, normalized_text FROM document_versions WHERE {_NOT_CURRENT}""",
    # 0003's triggers, as they were.
    f"""CREATE TRIGGER {FTS_TABLE}_document_insert AFTER INSERT ON documents
        WHEN NEW.current_version_id IS NOT NULL
        BEGIN
            INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
            SELECT id, title, normalized_text FROM document_versions WHERE id = NEW.current_version_id;
        END""",
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
