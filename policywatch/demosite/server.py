"""The demo sources' HTTP server: 127.0.0.1 only, threaded, each response in one write.

It reads the demo's step from the state file on each request (cheap: the file is only re-read
when it changed), so `policywatch demo step` in another process takes effect at once. Pages carry
an ETag, so unchanged pages answer conditional requests with 304 as real CMSs do.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from policywatch.demosite.site import DEFAULT_PORT, DemoSite, read_step, state_path

log = logging.getLogger(__name__)

_NOT_FOUND = b"<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>"


class _StepReader:
    """The current step, re-read only when the state file's mtime changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._step = 0

    def __call__(self) -> int:
        try:
            stat = self.path.stat()
            stamp: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp or stamp is None:
                self._step = read_step(self.path)
                self._stamp = stamp
            return self._step


class DemoServer:
    """Serve the demo sources on `host:port` (port 0: any free port) until `close()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        state: str | os.PathLike[str] | None = None,
    ) -> None:
        self.state_path = state_path(state)
        current_step = _StepReader(self.state_path)
        server_ref: dict[str, DemoSite] = {}

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "PolicyWatchDemo/1.0"

            def setup(self) -> None:
                super().setup()
                # One write per response and no Nagle delay: a keep-alive client is never stalled.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s %s", self.address_string(), format % args)

            def do_GET(self) -> None:
                self._answer(send_body=True)

            def do_HEAD(self) -> None:
                self._answer(send_body=False)

            def _answer(self, send_body: bool) -> None:
                response = server_ref["site"].response(self.path, current_step())
                headers = {"Cache-Control": "no-cache"}
                if response is None:
                    status, body = 404, _NOT_FOUND
                    headers["Content-Type"] = "text/html; charset=utf-8"
                else:
                    status, body = response.status, response.body
                    headers["Content-Type"] = response.content_type
                    headers["ETag"] = response.etag
                    if self.headers.get("If-None-Match") == response.etag:
                        status, body = 304, b""
                headers["Content-Length"] = str(len(body))
                reason = self.responses.get(status, ("",))[0]
                head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in headers.items()
                )
                payload = head.encode("latin-1") + b"\r\n" + (body if send_body else b"")
                try:
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:  # the client went away
                    self.close_connection = True

        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        server_ref["site"] = DemoSite(self.base_url)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host  # AF_INET: always str
        return f"http://{name}:{port}"

    def start(self) -> DemoServer:
        """Serve on a background thread."""
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.5)

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
