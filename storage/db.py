"""Engines and sessions for the version store (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_KEY = 0x5057_4D49_4752  # "PWMIGR": an advisory lock id no other code uses


class DatabaseError(RuntimeError):
    """The version store could not be reached or used; the message is one line for the operator."""


def default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'var' / 'policywatch.db'}"


def database_url(url: str | None = None) -> str:
    """The URL to use: explicit, else $POLICYWATCH_DATABASE_URL, else the SQLite file under var/.

    A plain postgresql:// URL gets the driver this project installs (psycopg 3).
    """
    raw = url or os.environ.get("POLICYWATCH_DATABASE_URL") or default_database_url()
    parsed = make_url(raw)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the web app, `changes`) work while a cycle writes; busy_timeout makes a
    # second writer wait instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    resolved = database_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("connect_args", {"connect_timeout": 10})
    return create_engine(resolved, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    with factory() as session, session.begin():
        yield session


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply the Alembic migrations (idempotent: at head it only reads the version table).

    "heads": independent migration branches (one per feature) are all applied, no merge needed.
    """
    from alembic import command

    cfg = _alembic_config(engine)
    with engine.begin() as connection:
        # Two first-ever cycles on one empty database would both create the schema: the second waits
        # here for the first to commit, then finds nothing left to do.
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (empty for a database without the version table)."""
    with engine.connect() as connection:
        try:
            return set(connection.scalars(text("SELECT version_num FROM alembic_version")))
        except DBAPIError:
            return set()


def head_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(cfg).get_heads())


_REVISION = re.compile(r'^revision: str = "([^"]+)"$', re.M)
# A tuple (a merge) may span lines, as ruff formats a long one.
_DOWN_REVISION = re.compile(r"^down_revision: [^=]+= (\([^)]*\)|.*?)(?:  #.*)?$", re.M)
_QUOTED = re.compile(r'"([^"]+)"')


@functools.cache
def declared_heads() -> frozenset[str] | None:
    """The head revisions read from the migration files' own declarations, without Alembic.

    Every cycle checks the schema: importing Alembic and loading its script directory costs ~0.5 s,
    this ~1 ms. None when a file does not declare both in the plain form (then Alembic decides).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        parents.update(_QUOTED.findall(down.group(1)))  # None, "parent" or ("a", "b") for a merge
    return frozenset(revisions - parents) or None


def ensure_schema(engine: Engine) -> None:
    """Upgrade only when behind, so every cycle can call this cheaply."""
    current = current_revisions(engine)
    if current and current == declared_heads():
        return
    if current != head_revisions():
        upgrade(engine)
