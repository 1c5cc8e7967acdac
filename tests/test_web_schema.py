"""Migration 0003_search on both databases: the models and migrations agree once the derived search
objects (which autogenerate is told to leave alone) are set aside, and an existing store is indexed."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import make_engine, upgrade
from storage.models import Base
from storage.queries import SEARCH_INDEXES, include_object


def test_search_objects_exist_and_are_the_only_difference_from_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        assert compare_metadata(context, Base.metadata) == []
        unfiltered = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    removed = {op[1].name for op in unfiltered if op[0] in ("remove_index", "remove_table")}
    assert {"ix_documents_republished_of_id", "ix_change_events_kind_detected"} <= removed
    assert removed <= SEARCH_INDEXES | {
        n for n in inspect(engine).get_table_names() if n.startswith("document_search")
    }
    if engine.dialect.name == "sqlite":
        assert "document_search" in removed
    else:
        assert {"ix_document_versions_text_trgm", "ix_document_versions_title_trgm"} <= removed
    engine.dispose()
