"""Shared fixtures: real databases (SQLite file and a throwaway PostgreSQL database), real local sites."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.support.site import LocalSite
from tests.support.smtp import SmtpServer

PG_ADMIN_URL = os.environ.get("POLICYWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database created for this test session and dropped after it."""
    name = f"pw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the suite needs PostgreSQL: say so instead of skipping
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}); run scripts/ensure-services.sh")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty version store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policywatch.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _reset_postgres(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'policywatch.db'}"


@pytest.fixture
def site() -> Iterator[LocalSite]:
    server = LocalSite()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd); modules that also set the environment have their own."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- markers: what `make test-fast` leaves out (`make test` runs everything) -------------------------

# Whole modules that start Airflow, a browser, or run a workload for seconds per test.
_MODULE_MARKS = {
    "test_airflow": ("airflow", "slow"),
    "test_celery_engine": ("airflow", "postgres", "slow"),
    "test_pacing": ("postgres",),
    "test_web_airflow": ("airflow", "slow"),
    "test_browser": ("browser",),
    "test_browser_triage": ("browser",),
    "test_browser_fetch": ("browser", "slow"),
    "test_mail_sink": ("browser",),
    "test_process_faults": ("slow",),
    "test_faults": ("slow",),
    "test_web_hostile": ("slow",),
    "test_properties": ("slow",),
    "test_fastpath_realpages": ("slow",),
    "test_diff_scale": ("slow",),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by what they need (markers in pyproject.toml): `postgres` for the PostgreSQL
    half of a parametrized test, and the module marks above."""
    for item in items:
        for marker in _MODULE_MARKS.get(item.module.__name__.rsplit(".", 1)[-1] if item.module else "", ()):
            item.add_marker(marker)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any("postgresql" in str(v) for v in callspec.params.values()):
            item.add_marker("postgres")
