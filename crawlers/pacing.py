"""Politeness: at most one request to a host every `min_delay_s`, in this process or across many.

A `HostPacer` hands out turns: `with pacer.turn(host, interval_s): <one request>`. Two kinds:

- `LocalPacer` (the default): per process. Each turn reserves a start slot `interval_s` after the
  previous one's (and after the previous request ended) and sleeps until it; threads of one Fetcher
  share it.
- Shared pacers, for batches of one host running in several processes or on several workers at
  once (Airflow's mapped tasks): a turn is exclusive across them and the next one starts
  `interval_s` after the previous request *ended*. Measured at the server, two requests are then
  never closer than `interval_s`, however late a process wakes up (a start-based slot could be
  overtaken by a process that overslept its own). `FilePacer` (here) keeps the turn in a lock file
  per host (one machine: SQLite stores, `make run`); the PostgreSQL one is
  `storage.host_turns.PostgresPacer` (every worker of a deployment). Both give the turn back when
  the process dies, SIGKILL included: the kernel drops a flock, the server a dead connection's locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol


class HostPacer(Protocol):
    def turn(self, host: str, interval_s: float) -> AbstractContextManager[None]:
        """Wait for `host`'s turn, hold it for the block (one request), then release it."""
        ...

    def close(self) -> None: ...


class LocalPacer:
    """Start slots per host in this process (thread-safe): a request starts at least `interval_s`
    after the previous one started, and at least `interval_s` after the previous one ended (a
    request whose connection took long to set up would otherwise reach the host less than the
    interval after it; the shared pacers count from the end too). Requests already given their
    slots still overlap: `concurrency` keeps its meaning."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_allowed: dict[str, float] = {}

    @contextlib.contextmanager
    def turn(self, host: str, interval_s: float) -> Iterator[None]:
        interval_s = max(0.0, interval_s)
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_allowed.get(host, 0.0))
            self._next_allowed[host] = slot + interval_s
        if slot > now:
            time.sleep(slot - now)
        try:
            yield
        finally:
            if interval_s:
                with self._lock:
                    ended = time.monotonic() + interval_s
                    self._next_allowed[host] = max(self._next_allowed.get(host, 0.0), ended)

    def close(self) -> None:
        pass


_STAMP = struct.Struct("<d")


def host_file_name(host: str) -> str:
    """A file name for `host` that no host name can turn into a path (and two hosts never share)."""
    readable = re.sub(r"[^a-z0-9.-]+", "_", host.lower())[:60].strip(".") or "host"
    return f"{readable}-{hashlib.blake2b(host.encode(), digest_size=6).hexdigest()}.turn"


class FilePacer:
    """Turns shared by every process of this machine, through `directory/<host>.turn`: an exclusive
    flock held for the request, and the wall-clock time the next request may start, written as the
    file's 8 bytes when the turn ends. Threads of one process take turns on a lock of their own
    first (flock is per open file, and each turn opens the file anew)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _thread_lock(self, host: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(host, threading.Lock())

    @contextlib.contextmanager
    def turn(self, host: str, interval_s: float) -> Iterator[None]:
        if interval_s <= 0:
            yield  # no politeness asked for: nothing to share
            return
        with self._thread_lock(host):
            fd = os.open(self.directory / host_file_name(host), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, _STAMP.size, 0)
                next_at = _STAMP.unpack(raw)[0] if len(raw) == _STAMP.size else 0.0
                wait = next_at - time.time()
                if wait > 0:
                    time.sleep(min(wait, interval_s))  # a clock set back never waits longer than one interval
                try:
                    yield
                finally:
                    os.pwrite(fd, _STAMP.pack(time.time() + interval_s), 0)
            finally:
                os.close(fd)  # drops the flock

    def close(self) -> None:
        pass
