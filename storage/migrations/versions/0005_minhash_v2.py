"""reposts: re-index minhash_bands with the numpy MinHash (a new 4-gram hash, so new band keys)

policywatch.reposts.signature now hashes 4-grams with splitmix64 in numpy instead of blake2b per
gram: band keys stored by the old code never match the new ones, and a repost of a document indexed
before the upgrade would go unnoticed. Every version's rows are recomputed here, in chunks of
CHUNK versions (a large store does not need its whole text in memory).

The migration calls the current policywatch.reposts: run later, after another change of the hash,
it computes that code's keys, which is what the store needs then too.

Revision ID: 0005_minhash_v2
Revises: 0004_identity
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from policywatch.reposts import band_keys, signature

revision: str = "0005_minhash_v2"
down_revision: str | None = "0004_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 500

_SELECT = sa.text(
    "SELECT id, document_id, normalized_text FROM document_versions WHERE id > :after ORDER BY id LIMIT :n"
)
_INSERT = sa.text(
    "INSERT INTO minhash_bands (band_key, version_id, document_id) "
    "VALUES (:band_key, :version_id, :document_id)"
)


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM minhash_bands"))
    after = 0
    while True:
        versions = bind.execute(_SELECT, {"after": after, "n": CHUNK}).all()
        if not versions:
            break
        rows = [
            {"band_key": key, "version_id": version_id, "document_id": document_id}
            for version_id, document_id, normalized_text in versions
            for key in set(band_keys(signature(normalized_text)))  # a key repeated in one text: one row
        ]
        bind.execute(_INSERT, rows)
        after = versions[-1][0]


def downgrade() -> None:
    # The old code cannot use the new keys. Without rows, its reposts.backfill re-indexes every
    # version with its own hash (BACKFILL_LIMIT versions per new document, oldest first).
    op.get_bind().execute(sa.text("DELETE FROM minhash_bands"))
