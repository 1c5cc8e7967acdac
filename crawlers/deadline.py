"""One wall-clock deadline per request, kept by the sockets themselves.

requests' (connect, read) timeouts bound each socket operation, not the request: a server that
drips a byte just faster than the read timeout would hold a worker for as long as it likes, in
the status line, the headers, the chunk sizes or the body. So the fetcher marks the thread's
deadline (`_request_deadline(at)`) and its connections are made on sockets that shrink the
timeout of every connect, recv and send to the time left (`_DeadlineSocket`; `_DeadlineSSLSocket`
once TLS is up). The deadline is a thread-local, not an argument, because urllib3 and
http.client stand between the fetcher and the socket and pass nothing of the kind through.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

_deadline = threading.local()  # .at: time.monotonic() by which this thread's request must be done

# A timeout this close to the request's deadline is the deadline's (socket timeouts may fire a
# little early).
_DEADLINE_SLACK_S = 0.05


class _DeadlinePassed(TimeoutError):
    """Raised by a socket read or write after the request's deadline (urllib3: a read timeout)."""


class _request_deadline:  # lowercase: used like a function, with _request_deadline(at): ...
    """Sockets used by this thread inside the block time out at `at`: every recv and send waits
    at most the time left (and at most the socket's own timeout). Connect, status line, headers,
    chunk sizes and body are all bounded, however slowly a server drips them."""

    __slots__ = ("at", "previous")

    def __init__(self, at: float) -> None:
        self.at = at
        self.previous: float | None = None

    def __enter__(self) -> None:
        self.previous = getattr(_deadline, "at", None)
        _deadline.at = self.at

    def __exit__(self, *exc: object) -> None:
        _deadline.at = self.previous


class _DeadlineMixin:
    """Socket methods that shrink the timeout of each recv/send to the thread's request deadline."""

    __slots__ = ()
    _pw_base: float | None

    def settimeout(self, value: float | None) -> None:
        self._pw_base = value  # type: ignore[misc]  # the slot is the concrete socket class's
        socket.socket.settimeout(self, value)  # type: ignore[arg-type]

    def _pw_tighten(self) -> None:
        base = self._pw_base
        at = getattr(_deadline, "at", None)
        timeout = base
        if at is not None:
            left = at - time.monotonic()
            if left <= 0:
                raise _DeadlinePassed("the request's deadline passed")
            timeout = left if base is None else min(base, left)
        if timeout != socket.socket.gettimeout(self):  # type: ignore[arg-type]
            socket.socket.settimeout(self, timeout)  # type: ignore[arg-type]

    def connect(self, *args: Any, **kwargs: Any) -> None:
        self._pw_tighten()
        return super().connect(*args, **kwargs)  # type: ignore[misc]

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._pw_tighten()
        return super().recv(*args, **kwargs)  # type: ignore[misc]

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._pw_tighten()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc]

    def send(self, *args: Any, **kwargs: Any) -> int:
        self._pw_tighten()
        return super().send(*args, **kwargs)  # type: ignore[misc]

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._pw_tighten()
        return super().sendall(*args, **kwargs)  # type: ignore[misc]


class _DeadlineSocket(_DeadlineMixin, socket.socket):
    __slots__ = ("_pw_base",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pw_base = socket.socket.gettimeout(self)


class _DeadlineSSLSocket(_DeadlineMixin, ssl.SSLSocket):
    """An SSLSocket made by the SSLContext, given this class after the handshake."""
