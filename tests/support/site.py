"""A real HTTP server on 127.0.0.1 whose pages a test can change between requests.

Each response goes out in one write with TCP_NODELAY: http.server's default of writing headers
and body separately stalls a keep-alive client for ~40 ms per request (Nagle + delayed ACK).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})
    # When set, the server answers If-None-Match / If-Modified-Since with 304.
    etag: str | None = None
    last_modified: str | None = None
    delay_s: float = 0.0
    # Drip mode: send the body in `drip_chunk`-byte pieces, `drip_interval_s` apart.
    drip_interval_s: float = 0.0
    drip_chunk: int = 1
    # False: no Content-Length; the body ends when the server closes the connection.
    send_length: bool = True


Handler = Callable[["RequestInfo"], Page]


@dataclass
class RequestInfo:
    method: str
    path: str
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # time.monotonic() when the request arrived
    peer: tuple[str, int] | None = None  # the client's address and port: one per TCP connection


class LocalSite:
    """Serve `pages` (path -> Page or callable) until `close()`; unknown paths answer 404."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.pages: dict[str, Page | Handler] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[RequestInfo] = []
        self._lock = threading.Lock()
        site = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(send_body=True)

            def do_HEAD(self) -> None:
                self._answer(send_body=False)

            def _answer(self, send_body: bool) -> None:
                path = self.path
                info = RequestInfo(
                    self.command,
                    path,
                    {k.lower(): v for k, v in self.headers.items()},
                    peer=self.client_address[:2],
                )
                with site._lock:
                    site.hits[path] += 1
                    site.requests.append(info)
                    entry = site.pages.get(path)
                if entry is None:
                    page = Page(body=b"<html><body>not found</body></html>", status=404)
                elif callable(entry):
                    page = entry(info)
                else:
                    page = entry
                if page.delay_s:
                    time.sleep(page.delay_s)
                status, body = page.status, page.body
                headers = dict(page.headers)
                if page.etag:
                    headers["ETag"] = page.etag
                if page.last_modified:
                    headers["Last-Modified"] = page.last_modified
                if status == 200 and (
                    (page.etag and info.headers.get("if-none-match") == page.etag)
                    or (page.last_modified and info.headers.get("if-modified-since") == page.last_modified)
                ):
                    status, body = 304, b""
                if page.send_length:
                    headers["Content-Length"] = str(len(body))
                else:
                    headers["Connection"] = "close"
                    self.close_connection = True
                reason = self.responses.get(status, ("",))[0]
                head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in headers.items()
                )
                if not send_body:
                    body = b""
                if page.drip_interval_s:
                    self.wfile.write(head.encode("latin-1") + b"\r\n")
                    self.wfile.flush()
                    step = max(1, page.drip_chunk)
                    try:
                        for i in range(0, len(body), step):
                            time.sleep(page.drip_interval_s)
                            self.wfile.write(body[i : i + step])
                            self.wfile.flush()
                    except OSError:  # the client gave up
                        self.close_connection = True
                    return
                payload = head.encode("latin-1") + b"\r\n" + body
                try:
                    self.wfile.write(payload)
                    self.wfile.flush()
                except OSError:  # the client hung up (e.g. it stopped reading an oversized body)
                    self.close_connection = True

        self.server = ThreadingHTTPServer((host, 0), _Handler)
        self.server.daemon_threads = True
        # A short poll interval: close() (server.shutdown) then returns in ~50 ms instead of ~500 ms.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def put(
        self,
        path: str,
        body: str | bytes,
        *,
        encoding: str = "utf-8",
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        **kwargs: object,
    ) -> Page:
        data = body.encode(encoding) if isinstance(body, str) else body
        headers = {"Content-Type": content_type} if content_type else {}
        extra = kwargs.pop("headers", None)
        if extra:
            headers.update(extra)  # type: ignore[arg-type]
        page = Page(body=data, status=status, headers=headers, **kwargs)  # type: ignore[arg-type]
        with self._lock:
            self.pages[path] = page
        return page

    def remove(self, path: str) -> None:
        with self._lock:
            self.pages.pop(path, None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
