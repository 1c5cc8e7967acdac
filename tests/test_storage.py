"""Schema migrations on both databases."""

from __future__ import annotations

from sqlalchemy import inspect

from storage.db import (
    current_revisions,
    declared_heads,
    ensure_schema,
    head_revisions,
    make_engine,
    upgrade,
)
from storage.models import Base


def test_migrations_build_the_models_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revisions(engine) == set()
    upgrade(engine)
    assert current_revisions(engine) == head_revisions()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    ensure_schema(engine)  # at head: nothing to do, no error
    engine.dispose()


def test_the_cheap_schema_check_knows_alembics_heads() -> None:
    assert declared_heads() == head_revisions()


def test_ensure_schema_upgrades_a_database_that_is_behind(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0004_identity")
    assert current_revisions(engine) == {"0004_identity"}
    ensure_schema(engine)
    assert current_revisions(engine) == head_revisions()
    engine.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    """Autogenerate finds nothing to add: every model change has its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.queries import include_object  # the same filter storage/migrations/env.py uses

    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    engine.dispose()


def _upgrade_in_child(url: str) -> None:
    upgrade(make_engine(url))


def test_first_upgrades_started_at_once_do_not_collide(db_url: str) -> None:
    """Two cycles started together on an empty database: one builds the schema, the others wait."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_upgrade_in_child, args=(db_url,)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0, 0, 0]
    engine = make_engine(db_url)
    assert current_revisions(engine) == head_revisions()
    engine.dispose()
