"""Admission control: at most `limit` requests handled at once per process, a bounded line of
waiting requests in front of them, and a fast 503 with Retry-After for everything beyond.

Without it every request went straight to a thread, 40 threads competed for the 15 connections of
the database pool, and under 200 concurrent clients most requests waited 30 s for a connection and
then failed (500), while the clients' own 60 s timeouts expired: 86% errors, and half a minute to
recover. Now a request either gets a slot at once, or waits in a first-come-first-served line of
at most `queue` requests for at most `wait_s` seconds, or is answered 503 at once. A request whose
client hangs up while it waits leaves the line (no query is run for nobody), so the server is
ready again as soon as the load stops.

A handler that waits for something other than this process's CPU and database (a diff computed on
its own thread) gives its slot back while it waits: `without_slot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

TICKET = "policywatch.admission"
BUSY = "Too many requests at once: retry in a moment."
_WATCH_LIMIT = 1 << 16  # bytes of request body kept while a request waits in line
SUMMARY_EVERY_S = 10.0  # while shedding, one log line per this many seconds (not one per 503)
T = TypeVar("T")
# Set while the gate sends a 503: uvicorn writes its access-log line inside that `send`, and under
# a flood writing one line per refused request cost more than refusing it.
_SHEDDING: ContextVar[bool] = ContextVar("policywatch_shedding", default=False)


class ShedAccessFilter(logging.Filter):
    """Leaves the gate's 503s out of uvicorn's access log (the gate logs a summary instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _SHEDDING.get()


def quiet_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, ShedAccessFilter) for f in access.filters):
        access.addFilter(ShedAccessFilter())


class Admission:
    """The slots of one process (asyncio only: no locks needed)."""

    def __init__(self, *, limit: int, queue: int, wait_s: float, retry_after_s: int) -> None:
        self.limit = max(1, limit)
        self.queue = max(0, queue)
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.rejected = 0
        self._summary_at = time.monotonic()
        self._summary_rejected = 0

    def _take_now(self) -> bool:
        if self.active < self.limit and not self.waiters:
            self.active += 1
            return True
        return False

    def release(self) -> None:
        """Hand the slot to the first request in line, or free it."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: `active` is unchanged
                return
        self.active -= 1

    async def acquire(self, watch: _Watch | None = None) -> bool | None:
        """True: a slot is held. False: the line is full or the wait ran out. None: the client left."""
        if self._take_now():
            return True
        if len(self.waiters) >= self.queue:
            self._refused()
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        waits: set[asyncio.Future[Any]] = {waiter} if watch is None else {waiter, watch.start()}
        try:
            await asyncio.wait(waits, timeout=self.wait_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._leave(waiter)
            raise
        gone = watch is not None and watch.gone
        if waiter.done() and not gone:
            return True
        self._leave(waiter)
        if gone:
            return None
        self._refused()
        return False

    def _refused(self) -> None:
        self.rejected += 1
        now = time.monotonic()
        if now - self._summary_at >= SUMMARY_EVERY_S:
            log.warning(
                "policywatch web: busy: %d request(s) answered 503 in the last %.0f s (%d at once, %d waiting)",
                self.rejected - self._summary_rejected,
                now - self._summary_at,
                self.active,
                len(self.waiters),
            )
            self._summary_at, self._summary_rejected = now, self.rejected

    def _leave(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.release()  # it was given the slot: pass it on
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self.waiters.remove(waiter)

    def stats(self) -> dict[str, int]:
        return {"active": self.active, "waiting": len(self.waiters), "rejected": self.rejected}


class AdmissionGate:
    """Pure ASGI middleware in front of the app: every HTTP request takes a slot of `admission`."""

    def __init__(self, app: ASGIApp, *, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watch = _Watch(receive)
        admitted = await self.admission.acquire(watch)
        watch.stop()
        if admitted is None:
            return  # the client hung up while waiting: nothing to answer
        if not admitted:
            await self._busy(scope, send)
            return
        ticket = Ticket(self.admission)
        scope[TICKET] = ticket
        try:
            await self.app(scope, watch.receive, send)
        finally:
            ticket.drop()

    async def _busy(self, scope: Scope, send: Send) -> None:
        retry_after = self.admission.retry_after_s
        body, media = busy_body(scope, retry_after)
        shedding = _SHEDDING.set(True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", media),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(retry_after).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
        finally:
            _SHEDDING.reset(shedding)
        await send({"type": "http.response.body", "body": body})


def wants_json(scope: Scope) -> bool:
    path = str(scope.get("path", ""))[len(str(scope.get("root_path", ""))) :]
    if path.startswith(("/api", "/export", "/feed")):
        return True
    accept = next((v for k, v in scope.get("headers", ()) if k == b"accept"), b"")
    return b"application/json" in accept


def busy_body(scope: Scope, retry_after_s: int) -> tuple[bytes, bytes]:
    if wants_json(scope):
        return json.dumps({"detail": BUSY}).encode(), b"application/json"
    page = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{retry_after_s}">'
        "<title>503 · PolicyWatch</title></head><body><h1>503</h1>"
        f"<p>{BUSY} 请求过多，请稍后重试。</p></body></html>"
    )
    return page.encode(), b"text/html; charset=utf-8"


class Ticket:
    """A request's slot; a handler may give it back while it waits on something else."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.held = True

    def drop(self) -> None:
        if self.held:
            self.held = False
            self.admission.release()

    async def take(self) -> bool:
        self.held = bool(await self.admission.acquire())
        return self.held


async def without_slot(request: Request, awaitable: Awaitable[T]) -> T:
    """Await `awaitable` with the request's slot given back, then take a slot again (or 503)."""
    ticket: Ticket | None = request.scope.get(TICKET)
    if ticket is None:
        return await awaitable
    ticket.drop()
    result = await awaitable
    if not await ticket.take():
        raise HTTPException(
            status_code=503, detail=BUSY, headers={"Retry-After": str(ticket.admission.retry_after_s)}
        )
    return result


class _Watch:
    """Reads the request while it waits in line, to notice a client that hangs up; what it read is
    replayed to the app."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._buffer: deque[Message] = deque()
        self._task: asyncio.Task[None] | None = None
        self.gone = False

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return self._task

    async def _run(self) -> None:
        kept = 0
        while True:
            message = await self._receive()
            self._buffer.append(message)
            if message["type"] == "http.disconnect":
                self.gone = True
                return
            kept += len(message.get("body", b""))
            if kept > _WATCH_LIMIT:
                # A large body: stop reading it here. Block (until cancelled) rather than return,
                # so that a finished watch never reads as a hung-up client.
                await asyncio.Event().wait()

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def receive(self) -> Message:
        if self._buffer:
            return self._buffer.popleft()
        return await self._receive()
