"""analysts: triage marks on changes, references between documents, follow filters, mark alerts

- change_marks: every mark an analyst put on a change (audit trail, never updated);
  change_events.mark: the current one, for filtering.
- document_references: what each version's text cites (《title》, 发文字号) and how (cites,
  implements, amends, repeals), resolved to a known document when one is known.
- subscriptions.follows, subscriber_preferences.follows: follow a document's citations.
- alert_outbox.reason: `event` (the change) or `important` (an analyst marked it so); exactly once
  per (subscriber, event, reason).

Revision ID: 0017_analysts
Revises: 0016_search_deferred, 0010_subscriber_preferences
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0017_analysts"
down_revision: str | tuple[str, ...] | None = (
    "0016_search_deferred",
    "0010_subscriber_preferences",
)  # needs 0010's subscriber_preferences
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TYPE = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch-mode copy of change_events or document tables would drop triggers.
    op.add_column(
        "change_events",
        sa.Column("mark", sa.String(length=24), server_default=sa.text("NULL"), nullable=True),
    )
    op.create_index(op.f("ix_change_events_mark"), "change_events", ["mark"], unique=False)
    op.create_table(
        "change_marks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("mark", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("at", UTC_TYPE, nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["change_events.id"], name=op.f("fk_change_marks_event_id_change_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_marks")),
    )
    op.create_index(op.f("ix_change_marks_event_id"), "change_marks", ["event_id"], unique=False)
    op.create_index(op.f("ix_change_marks_at"), "change_marks", ["at"], unique=False)
    op.create_table(
        "document_references",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("version_id", BigId, nullable=False),
        sa.Column("document_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("doc_number", sa.String(length=200), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("target_document_id", BigId, nullable=True),
        sa.Column("resolved_by", sa.String(length=16), nullable=True),
        sa.Column("checked_through", BigId, server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["document_versions.id"],
            name=op.f("fk_document_references_version_id_document_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_document_references_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["target_document_id"],
            ["documents.id"],
            name=op.f("fk_document_references_target_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_references")),
    )
    for column in ("version_id", "document_id", "doc_number", "target_document_id"):
        op.create_index(
            op.f(f"ix_document_references_{column}"), "document_references", [column], unique=False
        )
    op.add_column("subscriptions", sa.Column("follows", sa.JSON(), nullable=True))
    op.add_column("subscriber_preferences", sa.Column("follows", sa.JSON(), nullable=True))
    op.add_column(
        "alert_outbox", sa.Column("reason", sa.String(length=16), server_default="event", nullable=False)
    )
    op.drop_index("uq_alert_outbox_subscriber_event", table_name="alert_outbox")
    op.create_index(
        "uq_alert_outbox_subscriber_event_reason",
        "alert_outbox",
        ["subscriber_id", "event_id", "reason"],
        unique=True,
    )


def _drop_column(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    op.drop_index("uq_alert_outbox_subscriber_event_reason", table_name="alert_outbox")
    # Mark alerts go with their column; what stays is one row per (subscriber, event) again.
    op.execute("DELETE FROM alert_outbox WHERE reason <> 'event'")
    op.create_index(
        "uq_alert_outbox_subscriber_event", "alert_outbox", ["subscriber_id", "event_id"], unique=True
    )
    _drop_column("alert_outbox", "reason")
    _drop_column("subscriber_preferences", "follows")
    _drop_column("subscriptions", "follows")
    for column in ("version_id", "document_id", "doc_number", "target_document_id"):
        op.drop_index(op.f(f"ix_document_references_{column}"), table_name="document_references")
    op.drop_table("document_references")
    op.drop_index(op.f("ix_change_marks_at"), table_name="change_marks")
    op.drop_index(op.f("ix_change_marks_event_id"), table_name="change_marks")
    op.drop_table("change_marks")
    op.drop_index(op.f("ix_change_events_mark"), table_name="change_events")
    _drop_column("change_events", "mark")
