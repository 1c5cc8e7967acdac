"""The web app's handle on the version store: one engine, read-only sessions, schema checked once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.db import ensure_schema, make_engine, session_factory


class Store:
    """Opens sessions on the store; brings the schema up to date before the first one (the search
    index of migration 0003 must exist), lazily so that importing the app touches no database."""

    def __init__(self, engine_or_url: Engine | str | None) -> None:
        self.engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
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
