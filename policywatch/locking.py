"""The run lock: two cycles never process the same source of one database at the same time.

`source_lock(engine, source_id)` is held around one source's cycle. A second cycle that finds the
source locked waits up to `wait_s` seconds, then gives up with `SourceBusy` (the caller skips the
source: the other cycle is doing that work right now).

Airflow's runs split a cycle: planning and finishing take the lock exclusively, and the batches in
between take it `shared=True`, so on PostgreSQL the batches of one run go on several workers at once
(each document is in one batch; the host's politeness is crawlers.pacing's) while a `policywatch
run` of the same source still waits for all of them. On SQLite a shared lock is the exclusive one:
one machine, one writer, batches one at a time.

- PostgreSQL: a session-level advisory lock on a connection of its own. The server drops it when
  that connection ends, so a cycle killed with SIGKILL (or a lost network) never leaves it behind.
- SQLite: a row in `run_locks` (storage.models.RunLock) naming its owner "host:pid:token". A
  heartbeat thread refreshes its `acquired_at` while the lock is held. A row is stale, and taken
  over, when its owner is a process of this host that no longer exists, or when its heartbeat is
  older than `stale_after_s` (an owner on another host that died).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from storage.models import RunLock, utcnow

log = logging.getLogger(__name__)

# A SQLite lock row whose heartbeat is older than this belongs to a dead cycle (on another host).
STALE_AFTER_S = 180.0
HEARTBEAT_S = 30.0
POLL_S = 0.25


class SourceBusy(RuntimeError):
    """Another cycle holds the source's run lock."""

    def __init__(self, source_id: str, holder: str | None = None) -> None:
        self.source_id = source_id
        self.holder = holder
        who = f" ({holder})" if holder else ""
        super().__init__(f"another cycle is running source {source_id}{who}")


def advisory_key(source_id: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock (the same in every process)."""
    digest = hashlib.blake2b(f"policywatch:run:{source_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def source_lock(
    engine: Engine,
    source_id: str,
    *,
    wait_s: float = 0.0,
    stale_after_s: float = STALE_AFTER_S,
    heartbeat_s: float = HEARTBEAT_S,
    shared: bool = False,
) -> Iterator[None]:
    """Hold the run lock of `source_id` for the block; SourceBusy if it stays taken for `wait_s`.
    `shared`: alongside other shared holders (PostgreSQL; see the module)."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, source_id, wait_s, shared):
            yield
    else:
        with _row_lock(engine, source_id, wait_s, stale_after_s, heartbeat_s):
            yield


# --- PostgreSQL: advisory lock ----------------------------------------------------------------


_TRY_LOCK = {False: "SELECT pg_try_advisory_lock(:key)", True: "SELECT pg_try_advisory_lock_shared(:key)"}
_UNLOCK = {False: "SELECT pg_advisory_unlock(:key)", True: "SELECT pg_advisory_unlock_shared(:key)"}


@contextmanager
def _advisory_lock(engine: Engine, source_id: str, wait_s: float, shared: bool = False) -> Iterator[None]:
    key = advisory_key(source_id)
    conn = engine.connect()
    try:
        deadline = time.monotonic() + wait_s
        while True:
            got = conn.execute(text(_TRY_LOCK[shared]), {"key": key}).scalar()
            conn.commit()  # the lock is the session's; no transaction stays open while we hold it
            if got:
                break
            if time.monotonic() >= deadline:
                raise SourceBusy(source_id)
            time.sleep(POLL_S)
        try:
            yield
        finally:
            _advisory_unlock(conn, key, shared)
    finally:
        conn.close()


def _advisory_unlock(conn: Connection, key: int, shared: bool = False) -> None:
    try:
        conn.execute(text(_UNLOCK[shared]), {"key": key})
        conn.commit()
    except SQLAlchemyError:
        # The connection is broken (the database went away): the server has dropped the lock with
        # it. Never hand a connection that may still hold the lock back to the pool.
        conn.invalidate()


# --- SQLite (and any other database): a lock row ----------------------------------------------


def lock_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_dead(owner: str) -> bool:
    """True when `owner` is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # another lock of this very process (another thread): alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, as another user's process
    return False


def _try_row_lock(engine: Engine, source_id: str, owner: str, stale_after_s: float) -> str | None:
    """Take the lock row; None when taken, else the current holder."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(RunLock).values(source_id=source_id, owner=owner, acquired_at=utcnow()))
        return None
    except IntegrityError:
        pass
    with engine.connect() as conn:
        row = conn.execute(
            select(RunLock.owner, RunLock.acquired_at).where(RunLock.source_id == source_id)
        ).first()
    if row is None:
        return "" if _retry_insert(engine, source_id, owner) else None
    holder, beat = row.owner, row.acquired_at  # UTCDateTime: timezone-aware on both databases
    stale = _owner_is_dead(holder) or utcnow() - beat > timedelta(seconds=stale_after_s)
    if not stale:
        return holder
    # Take over a dead cycle's lock; the owner condition makes two takers race safely.
    with engine.begin() as conn:
        taken = conn.execute(
            update(RunLock)
            .where(RunLock.source_id == source_id, RunLock.owner == holder)
            .values(owner=owner, acquired_at=utcnow())
        ).rowcount
    if taken == 1:
        log.warning("run lock of source %s taken over from a dead cycle (%s)", source_id, holder)
        return None
    return holder


def _retry_insert(engine: Engine, source_id: str, owner: str) -> bool:
    """The row vanished between our insert and our look: try once more. True when still taken."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(RunLock).values(source_id=source_id, owner=owner, acquired_at=utcnow()))
        return False
    except IntegrityError:
        return True


class _Heartbeat(threading.Thread):
    def __init__(self, engine: Engine, source_id: str, owner: str, every_s: float) -> None:
        super().__init__(name=f"run-lock-{source_id}", daemon=True)
        self.engine, self.source_id, self.owner, self.every_s = engine, source_id, owner, every_s
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(RunLock)
                        .where(RunLock.source_id == self.source_id, RunLock.owner == self.owner)
                        .values(acquired_at=utcnow())
                    )
            except SQLAlchemyError as exc:  # the cycle itself will meet the same trouble
                log.warning("run lock heartbeat of %s failed: %s", self.source_id, exc)


@contextmanager
def _row_lock(
    engine: Engine, source_id: str, wait_s: float, stale_after_s: float, heartbeat_s: float
) -> Iterator[None]:
    owner = lock_owner()
    deadline = time.monotonic() + wait_s
    while True:
        holder = _try_row_lock(engine, source_id, owner, stale_after_s)
        if holder is None:
            break
        if time.monotonic() >= deadline:
            raise SourceBusy(source_id, holder or None)
        time.sleep(POLL_S)
    heartbeat = _Heartbeat(engine, source_id, owner, heartbeat_s)
    heartbeat.start()
    try:
        yield
    finally:
        heartbeat.stopped.set()
        heartbeat.join()
        try:
            with engine.begin() as conn:
                conn.execute(delete(RunLock).where(RunLock.source_id == source_id, RunLock.owner == owner))
        except SQLAlchemyError as exc:  # a row left behind is taken over once found stale
            log.warning("could not release the run lock of %s: %s", source_id, exc)
