"""checked vocabulary: the string columns that hold a kind, a state or a status keep to their set

storage.vocabulary names each set once; this migration makes the database refuse a value outside
it. PostgreSQL: a CHECK constraint per column (validated when the rows already there conform, else
added NOT VALID: it holds for every new write and an upgrade never fails on an old row). SQLite,
which cannot add a CHECK to an existing table without rebuilding it (and its foreign keys): a
BEFORE INSERT and a BEFORE UPDATE trigger per column that abort the write.

The sets are copied here, as a migration must keep what it did; tests/test_storage.py fails when
storage.vocabulary.CHECKED_COLUMNS and this copy drift apart (a new value needs a new migration).

Revision ID: 0021_checked_vocabulary
Revises: 0020_host_turns
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_checked_vocabulary"
down_revision: str | None = "0020_host_turns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKED_COLUMNS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("sources", "health_state", ("up", "degraded", "down"), False),
    ("documents", "status", ("active", "removed"), False),
    (
        "fetch_attempts",
        "outcome",
        (
            "new",
            "changed",
            "unchanged",
            "not_modified",
            "removed",
            "restored",
            "republished",
            "baseline",
            "error",
            "listing",
            "dead_link",
            "moved",
            "deferred",
        ),
        False,
    ),
    ("change_events", "kind", ("new", "changed", "removed", "restored", "republished"), False),
    ("change_events", "mark", ("important", "reviewed", "not_significant"), True),
    ("change_marks", "mark", ("important", "reviewed", "not_significant", "cleared"), False),
    ("document_references", "kind", ("cites", "implements", "amends", "repeals"), False),
    ("document_references", "resolved_by", ("number", "title", "fuzzy-title"), True),
    ("operator_notices", "kind", ("degraded", "recovered", "overdue"), False),
    ("operator_notices", "status", ("pending", "sent"), False),
    ("alert_outbox", "mode", ("immediate", "digest"), False),
    ("alert_outbox", "reason", ("event", "important"), False),
    ("alert_outbox", "status", ("pending", "sending", "sent", "failed", "cancelled"), False),
    ("sent_mail", "kind", ("alert", "digest", "notice"), False),
)


def _condition(column: str, values: tuple[str, ...], nullable: bool) -> str:
    allowed = ", ".join(f"'{v}'" for v in values)
    clause = f"{column} IN ({allowed})"
    return f"{column} IS NULL OR {clause}" if nullable else clause


def _name(table: str, column: str) -> str:
    return f"ck_{table}_{column}"


def upgrade() -> None:
    bind = op.get_bind()
    for table, column, values, nullable in CHECKED_COLUMNS:
        name = _name(table, column)
        if bind.dialect.name == "sqlite":
            new = _condition(f"NEW.{column}", values, nullable)
            for event, when in (("INSERT", "INSERT"), ("UPDATE", f"UPDATE OF {column}")):
                op.execute(
                    f"CREATE TRIGGER {name}_{event.lower()} BEFORE {when} ON {table} "
                    f"WHEN NOT ({new}) BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
                )
            continue
        condition = _condition(column, values, nullable)
        outside = bind.execute(sa.text(f"SELECT count(*) FROM {table} WHERE NOT ({condition})")).scalar_one()
        not_valid = " NOT VALID" if outside else ""
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}){not_valid}")


def downgrade() -> None:
    bind = op.get_bind()
    for table, column, _, _ in CHECKED_COLUMNS:
        name = _name(table, column)
        if bind.dialect.name == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {name}_insert")
            op.execute(f"DROP TRIGGER IF EXISTS {name}_update")
        else:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
