"""Politeness shared by every worker of a PostgreSQL deployment (see crawlers.pacing).

A turn is one transaction on a connection of the pacer's own: `SELECT … FOR UPDATE` of the host's
`host_turns` row (a second worker blocks there), a sleep until `next_at`, the request, then `next_at`
set one interval after the request ended, by the server's clock, and the commit that releases the
row. A worker killed mid-request (SIGKILL) closes its connection: the server rolls back and the next
worker's turn starts at once; a worker cut off without a closed connection is rolled back by
`idle_in_transaction_session_timeout`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from storage.db import make_engine

log = logging.getLogger(__name__)

_NOW = "extract(epoch from clock_timestamp())"
# How long a turn may stay open without a statement (a request's total deadline is well under it).
IDLE_IN_TURN_S = 300


class PostgresPacer:
    """A HostPacer (crawlers.pacing) over the `host_turns` table of the PostgreSQL store at `url`."""

    def __init__(self, url: str, *, idle_in_turn_s: int = IDLE_IN_TURN_S) -> None:
        self.engine: Engine = make_engine(url, pool_size=2, max_overflow=6, pool_pre_ping=True)
        if self.engine.dialect.name != "postgresql":
            raise ValueError("PostgresPacer needs a PostgreSQL database")

        @event.listens_for(self.engine, "connect")
        def _bounded_turns(dbapi_connection: Any, _record: Any) -> None:
            with contextlib.closing(dbapi_connection.cursor()) as cursor:
                cursor.execute(
                    "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                    (str(int(idle_in_turn_s) * 1000),),
                )
            dbapi_connection.commit()

        self._known: set[str] = set()
        self._lock = threading.Lock()

    def _ensure_row(self, conn: Connection, host: str) -> None:
        with self._lock:
            if host in self._known:
                return
        conn.execute(
            text("INSERT INTO host_turns (host, next_at) VALUES (:host, 0) ON CONFLICT (host) DO NOTHING"),
            {"host": host},
        )
        conn.commit()
        with self._lock:
            self._known.add(host)

    @contextlib.contextmanager
    def turn(self, host: str, interval_s: float) -> Iterator[None]:
        if interval_s <= 0:
            yield
            return
        conn = self.engine.connect()
        try:
            self._ensure_row(conn, host)
            wait = conn.execute(
                text(f"SELECT next_at - {_NOW} FROM host_turns WHERE host = :host FOR UPDATE"),
                {"host": host},
            ).scalar_one()
            if wait > 0:
                time.sleep(min(wait, interval_s))  # a clock set back never waits longer than one interval
            try:
                yield
            finally:
                self._end_turn(conn, host, interval_s)
        finally:
            conn.close()

    @staticmethod
    def _end_turn(conn: Connection, host: str, interval_s: float) -> None:
        try:
            conn.execute(
                text(f"UPDATE host_turns SET next_at = {_NOW} + :interval WHERE host = :host"),
                {"host": host, "interval": interval_s},
            )
            conn.commit()
        except SQLAlchemyError as exc:
            # The database went away: the server has rolled the turn back; the next one starts
            # without this interval, and the request itself has been made.
            log.warning("could not end the turn of %s: %s", host, exc)
            conn.invalidate()

    def close(self) -> None:
        self.engine.dispose()
