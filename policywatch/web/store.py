"""The web app's handle on the version store: one engine, read-only sessions, schema checked once.

The engine's connection pool is sized to the number of requests a process handles at once
(web.limits), plus as many again for streamed exports and the schema check, with a short wait for
a connection: the admission gate never lets more requests in than there are connections, so a
request that does wait 10 s for one is answered 503, not left hanging.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from storage.db import database_url, ensure_schema, make_engine, session_factory

POOL_TIMEOUT_S = 10


def pool_options(url: str | None, connections: int) -> dict[str, int]:
    """Pool settings for `connections` requests at once (none for an in-memory SQLite database,
    whose pool keeps one connection per thread)."""
    parsed = make_url(database_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        return {}
    return {"pool_size": connections, "max_overflow": connections, "pool_timeout": POOL_TIMEOUT_S}


def pool_capacity(engine: Engine) -> int | None:
    """How many connections the engine's pool hands out at once (None: no limit)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    overflow = getattr(pool, "_max_overflow", 0)
    if overflow < 0:
        return None
    return pool.size() + overflow


class Store:
    """Opens sessions on the store; brings the schema up to date before the first one (the search
    index of migration 0003 must exist), lazily so that importing the app touches no database."""

    def __init__(self, engine_or_url: Engine | str | None, connections: int = 4) -> None:
        if isinstance(engine_or_url, Engine):
            self.engine = engine_or_url
        else:
            self.engine = make_engine(engine_or_url, **pool_options(engine_or_url, connections))
        self._sessions: sessionmaker[Session] = session_factory(self.engine)
        self._ready = False
        self._lock = threading.Lock()

    def ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                ensure_schema(self.engine)
                self._ready = True

    def session(self) -> Session:
        self.ensure_ready()
        return self._sessions()

    def sessions(self) -> Iterator[Session]:
        """FastAPI dependency: one session per request, never committed (the app only reads)."""
        session = self.session()
        try:
            yield session
        finally:
            session.rollback()
            session.close()
