"""The SQLite search index (FTS5, migrations 0003/0007/0016) is filled in bulk, not row by row.

Recording a version only notes it as pending (a trigger, in the same transaction);
`index_pending_versions` indexes everything pending with one statement: one FTS5 segment per batch
instead of one per commit of the version stage. The pipeline calls it when a batch of documents is
done; searches call it first, so a search never misses a recorded version. PostgreSQL's trigram
indexes are the server's business: there it does nothing.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

FTS_TABLE = "document_search"
PENDING_TABLE = f"{FTS_TABLE}_pending"

_HAS_PENDING = text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name")
_ANY_PENDING = text(f"SELECT 1 FROM {PENDING_TABLE} LIMIT 1")
_INDEX = text(
    f"""INSERT INTO {FTS_TABLE}(rowid, title, normalized_text)
        SELECT v.id, v.title, v.normalized_text FROM document_versions AS v
        JOIN {PENDING_TABLE} AS p ON p.version_id = v.id"""
)
_CLEAR = text(f"DELETE FROM {PENDING_TABLE}")


def index_pending_versions(engine: Engine) -> int:
    """Index every version recorded since the last call (SQLite), in a transaction of its own;
    the number indexed. Cheap when nothing is pending: one read, no write lock."""
    if engine.dialect.name != "sqlite":
        return 0
    with engine.connect() as conn:
        if conn.execute(_HAS_PENDING, {"name": PENDING_TABLE}).first() is None:
            return 0  # a store not upgraded to 0016 indexes on insert (0007's trigger)
        if conn.execute(_ANY_PENDING).first() is None:
            return 0
    with engine.begin() as conn:
        # The write lock first: a read transaction that later writes can fail at once (WAL's
        # SQLITE_BUSY_SNAPSHOT) when another writer committed in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        indexed = conn.execute(_INDEX).rowcount
        conn.execute(_CLEAR)
    return max(indexed, 0)
