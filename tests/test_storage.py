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


def test_0007_indexes_the_old_versions_of_an_existing_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite's FTS5 index: 0003 held current versions only; after 0007 it holds every version, and
    a search still answers with current versions only."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from policywatch.search import search_documents
    from storage.db import session_factory
    from storage.models import Document, DocumentVersion, Source

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0003_search")
    upgrade(engine, "0006_page_fingerprint")
    now = datetime.now(UTC)
    with session_factory(engine).begin() as session:
        session.add(Source(id="s", name="s"))
        session.flush()
        doc = Document(source_id="s", url="http://example.org/1", status="active", first_seen_at=now)
        session.add(doc)
        session.flush()
        versions = []
        for figure in ("八三五四亿元", "九千五百亿元"):
            body = f"数字经济核心产业增加值达到{figure}。"
            version = DocumentVersion(
                document_id=doc.id,
                content_hash=figure,
                title="规划",
                text=body,
                normalized_text=body,
                chars=len(body),
                url=doc.url,
                first_seen_at=now,
                last_seen_at=now,
            )
            session.add(version)
            session.flush()
            versions.append(version.id)
            doc.current_version_id = version.id
            session.flush()
    ensure_schema(engine)
    with engine.connect() as conn:
        indexed = set(conn.execute(text("SELECT rowid FROM document_search")).scalars())
    assert indexed == set(versions)
    with session_factory(engine)() as session:
        assert search_documents(session, "八三五四") == []
        assert [hit["version_id"] for hit in search_documents(session, "九千五百")] == [versions[1]]
    engine.dispose()


def test_the_analysts_and_delivery_migrations_go_down_and_up_again(db_url: str) -> None:
    """0019 → 0018 → 0017 down to the two heads 0017 merged, then up again, on a store with rows."""
    from alembic import command

    from storage.db import _alembic_config

    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO sources (id, name, created_at, health_state, consecutive_failures) "
                "VALUES ('s', 'S', '2026-01-01 00:00:00', 'up', 0)"
            )
        with engine.begin() as connection:
            cfg = _alembic_config(engine)
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0016_search_deferred")
        assert current_revisions(engine) == {"0016_search_deferred", "0010_subscriber_preferences"}
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
        assert "change_marks" not in tables and "document_references" not in tables
        upgrade(engine)
        assert current_revisions(engine) == head_revisions()
        with engine.connect() as connection:
            assert {"change_marks", "document_references"} <= set(inspect(connection).get_table_names())
            columns = {c["name"] for c in inspect(connection).get_columns("alert_outbox")}
            assert {"reason", "retry_at"} <= columns
            assert connection.exec_driver_sql("SELECT count(*) FROM sources").scalar() == 1
    finally:
        engine.dispose()


def _migration_0021():  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    import storage

    path = Path(storage.__file__).parent / "migrations" / "versions" / "0021_checked_vocabulary.py"
    spec = importlib.util.spec_from_file_location("migration_0021", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_columns_of_the_migration_are_the_vocabulary() -> None:
    """A value added to a set in storage.vocabulary needs a migration: this fails until it has one."""
    from storage.vocabulary import CHECKED_COLUMNS

    ours = [(t, c, tuple(str(v) for v in values), n) for t, c, values, n in CHECKED_COLUMNS]
    assert ours == list(_migration_0021().CHECKED_COLUMNS)
    # ...and every checked column is a column of its model.
    for table, column, _, nullable in CHECKED_COLUMNS:
        assert Base.metadata.tables[table].c[column].nullable == nullable, (table, column)


_SOURCE = (
    "INSERT INTO sources (id, name, created_at, health_state, consecutive_failures) "
    "VALUES ('s', 'S', '2026-01-01 00:00:00', 'up', 0)"
)


def _refused(engine, sql: str) -> bool:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import IntegrityError

    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(sql)
    except IntegrityError:
        return True
    return False


def test_the_database_refuses_a_value_outside_its_set_and_takes_every_value_in_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(_SOURCE)
        notice = (
            "INSERT INTO operator_notices (source_id, kind, subject, body, created_at, status, attempts) "
            "VALUES ('s', '{kind}', 'x', 'y', '2026-01-01 00:00:00', '{status}', 0)"
        )
        assert _refused(engine, notice.format(kind="bogus", status="pending"))
        assert _refused(engine, notice.format(kind="overdue", status="queued"))
        for kind in ("degraded", "recovered", "overdue"):
            assert not _refused(engine, notice.format(kind=kind, status="sent"))
        # An update is checked too (SQLite: its own trigger), and NULL only where the set allows it.
        assert _refused(engine, "UPDATE sources SET health_state = 'sick' WHERE id = 's'")
        assert not _refused(engine, "UPDATE sources SET health_state = 'degraded' WHERE id = 's'")
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO documents (id, source_id, url, status, first_seen_at) "
                "VALUES (1, 's', 'http://x/1', 'active', '2026-01-01 00:00:00')"
            )
        event = (
            "INSERT INTO change_events (kind, source_id, document_id, url, detected_at, relevant, "
            "significance, summary, mark) VALUES ('{kind}', 's', 1, 'http://x/1', '2026-01-01 00:00:00', "
            "false, 1.0, '', {mark})"
        )
        assert _refused(engine, event.format(kind="edited", mark="NULL"))
        assert _refused(engine, event.format(kind="new", mark="'cleared'"))  # cleared is no current mark
        assert not _refused(engine, event.format(kind="republished", mark="NULL"))
        assert not _refused(engine, event.format(kind="changed", mark="'not_significant'"))
        assert _refused(engine, "UPDATE documents SET status = 'gone' WHERE id = 1")
    finally:
        engine.dispose()


def test_the_checked_vocabulary_migration_goes_down_and_up_again(db_url: str) -> None:
    from alembic import command

    from storage.db import _alembic_config

    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(_SOURCE)
        with engine.begin() as connection:
            cfg = _alembic_config(engine)
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0020_host_turns")
        assert not _refused(engine, "UPDATE sources SET health_state = 'sick' WHERE id = 's'")
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE sources SET health_state = 'up' WHERE id = 's'")
        upgrade(engine)
        assert current_revisions(engine) == head_revisions()
        assert _refused(engine, "UPDATE sources SET health_state = 'sick' WHERE id = 's'")
    finally:
        engine.dispose()
