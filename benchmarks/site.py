"""The benchmark site: N policy pages on 127.0.0.1, served by one asyncio process.

    python -m benchmarks.site --pages 1000 [--noise PROFILE] [--port 0]
                                                          prints "READY <port>" when listening

Every response goes out in ONE write on a TCP_NODELAY socket (headers and body together): a server
that writes them separately with Nagle on stalls a keep-alive client ~40 ms per request. HTTP/1.1
keep-alive, GET only. Paths: /list/ (every document), /content/<i>.html, /robots.txt (404).
Control (the benchmark runner's, not a client's): /_bench/change?docs=1,2,3 bumps those documents'
edition (a change in substance); /_bench/etag?on=1 turns ETag/Last-Modified (and 304s) on or off;
/_bench/reset; /_bench/stats; /_bench/gaps?min=S[&clear=1] (the intervals between requests). Without ETag mode the server ignores conditional headers (as many
government sites do). The visit counter of every page changes on every visit (page chrome).
With --noise PROFILE (benchmarks.pages.NOISE_PROFILES) each page also carries that profile's noise,
drawn anew for each of NOISE_VARIANTS renderings that successive requests go through in turn (so two
fetches in a row never see the same noise); rendered up front, so noise costs the server nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import itertools
import json
import random
import socket
import sys
import time
from datetime import UTC
from urllib.parse import parse_qs, urlsplit

from benchmarks.pages import COUNTER_MARK, PROFILES, doc_spec, listing, render

_MARK = str(COUNTER_MARK).encode()
_BASE_TIME = 1_700_000_000  # Last-Modified of edition 0; each edition is a day later
_REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found", 400: "Bad Request"}
NOISE_VARIANTS = 3


class BenchSite:
    def __init__(self, pages: int, noise: str = "baseline") -> None:
        self.count = pages
        self.noise = noise
        self.variants = 1 if noise == "baseline" else NOISE_VARIANTS
        self.specs = [doc_spec(i) for i in range(pages)]
        self.editions = [0] * pages
        self.served = [0] * pages  # 200 responses per document: which noise variant comes next
        self.bodies: dict[tuple[int, int, int], bytes] = {}
        self.listing = listing(pages)
        self.etag_mode = False
        self.visits = 0
        self.requests = 0
        self.not_modified = 0
        self.arrivals: list[float] = []  # time.monotonic() of each request that is not a control's
        self.document_arrivals: list[float] = []  # of the documents' pages only
        for i in range(pages):  # rendered up front: the cold phase measures the client, not this
            self.body(i)

    def body(self, i: int, variant: int = 0) -> bytes:
        key = (i, self.editions[i], variant)
        body = self.bodies.get(key)
        if body is None:
            for v in range(self.variants):  # every variant of this edition at once
                rng = random.Random(f"{self.noise}-{i}-{self.editions[i]}-{v}")
                self.bodies[(i, self.editions[i], v)] = render(
                    self.specs[i], self.editions[i], self.noise, rng
                )
            body = self.bodies[key]
        return body

    def reset(self) -> None:
        self.editions = [0] * self.count
        self.etag_mode = False

    def answer(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        parts = urlsplit(target)
        path = parts.path
        if not path.startswith("/_bench/"):
            self.arrivals.append(time.monotonic())
            if path.startswith("/content/"):
                self.document_arrivals.append(self.arrivals[-1])
        if path == "/list/":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, self.listing
        if path.startswith("/content/") and path.endswith(".html"):
            number = path[len("/content/") : -len(".html")]
            if not number.isdigit() or int(number) >= self.count:
                return 404, {"Content-Type": "text/html"}, b"<html><body>not found</body></html>"
            i = int(number)
            spec = self.specs[i]
            out = {"Content-Type": spec.content_type}
            if self.etag_mode:
                etag = f'"{i}-{self.editions[i]}"'
                modified = email.utils.formatdate(_BASE_TIME + 86400 * self.editions[i], usegmt=True)
                out["ETag"], out["Last-Modified"] = etag, modified
                asked_etag = headers.get("if-none-match")
                since = headers.get("if-modified-since")
                fresh = asked_etag == etag if asked_etag is not None else _not_modified_since(since, modified)
                if fresh:
                    self.not_modified += 1
                    return 304, out, b""
            self.visits += 1
            self.served[i] += 1
            body = self.body(i, self.served[i] % self.variants)
            return 200, out, body.replace(_MARK, str(self.visits).encode())
        if path.startswith("/_bench/"):
            return self.control(path[len("/_bench/") :], parse_qs(parts.query))
        return 404, {"Content-Type": "text/html"}, b"<html><body>not found</body></html>"

    def control(self, command: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if command == "change":
            for number in query.get("docs", [""])[0].split(","):
                if number.isdigit() and int(number) < self.count:
                    self.editions[int(number)] += 1
                    self.body(int(number))
        elif command == "etag":
            self.etag_mode = query.get("on", ["0"])[0] == "1"
        elif command == "reset":
            self.reset()
        elif command == "gaps":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.gaps(query)).encode()
        stats = {
            "pages": self.count,
            "requests": self.requests,
            "not_modified": self.not_modified,
            "etag": self.etag_mode,
            "changed_docs": sum(1 for e in self.editions if e),
            "noise": self.noise,
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(stats).encode()

    def gaps(self, query: dict[str, list[str]]) -> dict[str, object]:
        """The intervals between requests as this server saw them (politeness, measured here);
        `min=S`: how many were shorter than S seconds; `clear=1`: start counting afresh."""
        floor = float(query.get("min", ["0"])[0])
        times = sorted(self.arrivals)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        result: dict[str, object] = {
            "requests": len(times),
            "span_s": round(times[-1] - times[0], 3) if times else 0.0,
            # First to last document request: the batches' part, without Airflow's task start-up
            # between the listing (discover) and the first batch.
            "documents_span_s": round(self.document_arrivals[-1] - self.document_arrivals[0], 3)
            if self.document_arrivals
            else 0.0,
            "min_gap_s": round(min(gaps), 4) if gaps else None,
            "median_gap_s": round(sorted(gaps)[len(gaps) // 2], 4) if gaps else None,
            "under_min": sum(1 for g in gaps if g < floor),
        }
        if query.get("clear", ["0"])[0] == "1":
            self.arrivals.clear()
            self.document_arrivals.clear()
        return result


def _not_modified_since(since: str | None, modified: str) -> bool:
    if not since:
        return False
    try:
        asked = email.utils.parsedate_to_datetime(since)
        have = email.utils.parsedate_to_datetime(modified)
    except (TypeError, ValueError):
        return False
    if asked.tzinfo is None:  # "-0000" (urlwatch's formatdate): UTC
        asked = asked.replace(tzinfo=UTC)
    return asked >= have


async def serve_client(site: BenchSite, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                return
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            status, out, body = site.answer(target, headers)
            if method == "HEAD":
                body = b""
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            out["Content-Length"] = str(len(body))
            if close:
                out["Connection"] = "close"
            response = f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in out.items()
            )
            writer.write(response.encode("latin-1") + b"\r\n" + body)  # one write: head and body
            await writer.drain()
            if close:
                return
    finally:
        writer.close()


async def main_async(pages: int, port: int, noise: str = "baseline") -> None:
    site = BenchSite(pages, noise)
    server = await asyncio.start_server(
        lambda r, w: serve_client(site, r, w), "127.0.0.1", port, backlog=256, limit=65536
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--noise", choices=PROFILES, default="baseline")
    args = parser.parse_args()
    try:
        asyncio.run(main_async(args.pages, args.port, args.noise))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
