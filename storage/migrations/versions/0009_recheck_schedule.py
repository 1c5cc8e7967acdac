"""Re-check scheduling: each document's check history, and a source's new URLs left for later

documents.checks / changes / not_modified_checks / removed_checks: what policywatch.schedule
needs to decide a document's next check (successful checks, the first fetch included; the checks
that found its text or title changed; those answered 304 Not Modified; the re-checks that found a
removed page still gone). Counters rather than a query over fetch_attempts at every plan: that
table grows by a row per page per cycle. Existing documents get them from their fetch attempts and
change events (what the store already knows of them); removed_checks starts at 0, which only
makes a removed page due sooner once.

sources.pending_urls: new URLs a cycle found but could not fetch within its host budget or
max_documents, first in line at the next cycle even if the listing no longer shows them.
sources.listed_urls: the document URLs the listings showed last cycle. A known document that has
just dropped off them while new URLs appeared may have moved to one of them: it is checked before
the new URLs (a redirect keeps its history), without re-checking every document first.
sources.freshness: what the last cycle reported of the source's re-checks (due, re-checked,
deferred, share of documents within their interval, budget and its use per host), for the dashboard.

Revision ID: 0009_recheck_schedule
Revises: 0008_extractor_revision
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_recheck_schedule"
down_revision: str | None = "0008_extractor_revision"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Outcomes of fetch_attempts that are a successful check of the document (policywatch.pipeline).
_CHECKED = "('new', 'changed', 'unchanged', 'not_modified', 'removed', 'restored', 'republished', 'baseline', 'moved')"


def upgrade() -> None:
    # Plain ADD COLUMNs with constant defaults: no table copy (which would drop SQLite triggers).
    op.add_column("documents", sa.Column("checks", sa.Integer(), server_default="1", nullable=False))
    op.add_column("documents", sa.Column("changes", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "documents", sa.Column("not_modified_checks", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("documents", sa.Column("removed_checks", sa.Integer(), server_default="0", nullable=False))
    op.add_column("sources", sa.Column("pending_urls", sa.JSON(), nullable=True))
    op.add_column("sources", sa.Column("listed_urls", sa.JSON(), nullable=True))
    op.add_column("sources", sa.Column("freshness", sa.JSON(), nullable=True))
    op.execute(
        f"""UPDATE documents SET
            checks = (SELECT CASE WHEN count(*) > 0 THEN count(*) ELSE 1 END FROM fetch_attempts
                      WHERE fetch_attempts.document_id = documents.id AND outcome IN {_CHECKED}),
            not_modified_checks = (SELECT count(*) FROM fetch_attempts
                      WHERE fetch_attempts.document_id = documents.id AND outcome = 'not_modified'),
            changes = (SELECT count(*) FROM change_events
                      WHERE change_events.document_id = documents.id AND change_events.kind = 'changed')"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: copying the table would drop the search triggers on other tables' FKs.
        for column in ("checks", "changes", "not_modified_checks", "removed_checks"):
            op.execute(f"ALTER TABLE documents DROP COLUMN {column}")
        op.execute("ALTER TABLE sources DROP COLUMN pending_urls")
        op.execute("ALTER TABLE sources DROP COLUMN listed_urls")
        op.execute("ALTER TABLE sources DROP COLUMN freshness")
    else:
        for column in ("checks", "changes", "not_modified_checks", "removed_checks"):
            op.drop_column("documents", column)
        op.drop_column("sources", "pending_urls")
        op.drop_column("sources", "listed_urls")
        op.drop_column("sources", "freshness")
