"""A raw TCP server on 127.0.0.1 for servers that misbehave below HTTP: each connection's request
head is read and handed, with the socket, to a function that answers however it likes (drips the
status line, sends raw bytes, acts as a forwarding proxy...)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class RawRequest:
    head: bytes  # the request line and headers, as received

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    def header(self, name: str) -> str | None:
        for raw in self.head.split(b"\r\n")[1:]:
            key, _, value = raw.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


Answer = Callable[[socket.socket, RawRequest, threading.Event], None]


class RawServer:
    """Accept connections until `close()`; `answer(conn, request, stopping)` writes the response.

    `stopping` is set by `close()`: an answer that drips forever should watch it.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[RawRequest] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            request = RawRequest(head.split(b"\r\n\r\n", 1)[0])
            with self._lock:
                self.requests.append(request)
            self.answer(conn, request, self.stopping)
        except OSError:
            pass  # the client gave up
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.sock.close()


def drip(conn: socket.socket, data: bytes, interval_s: float, stopping: threading.Event) -> None:
    """Send `data` one byte every `interval_s` seconds (until the client hangs up or the server stops)."""
    for i in range(len(data)):
        if stopping.wait(interval_s):
            return
        conn.sendall(data[i : i + 1])
