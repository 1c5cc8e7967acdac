"""A local mail sink for `make run`: a real SMTP server on 127.0.0.1 (aiosmtpd) that accepts every
message and keeps it as a file (Maildir: DIR/new/*.eml), so alerts are sent, not left pending,
when no real server is configured. Nothing leaves the machine. What PolicyWatch sent is also on the
web app's Mail page (from the store); the files hold whatever else reaches the sink.

    python scripts/mail_sink.py [--host 127.0.0.1] [--port 8025] [--dir var/mail]

Runs until SIGTERM or SIGINT. Loopback only: a sink open to the network would accept anyone's mail.
"""

from __future__ import annotations

import argparse
import email
import ipaddress
import signal
import sys
import threading
import time
import uuid
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MaildirSink:
    """aiosmtpd handler: each accepted message becomes DIR/new/<time>-<id>.eml (written to tmp/ first,
    then renamed, so a reader never sees half a message)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        name = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.directory / "tmp" / name
        tmp.write_bytes(raw)
        tmp.rename(self.directory / "new" / name)
        subject = email.message_from_bytes(raw, policy=default_policy)["Subject"]
        print(f"mail sink: {envelope.mail_from} -> {', '.join(envelope.rcpt_tos)}: {subject}", flush=True)
        return "250 2.0.0 OK: kept by the local mail sink"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"))
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("the mail sink listens on a loopback address only")
    controller = Controller(MaildirSink(args.dir), hostname=args.host, port=args.port)
    try:
        controller.start()
    except OSError as exc:  # the port is taken (another sink, another server)
        print(f"mail sink: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"mail sink: listening on smtp://{args.host}:{args.port}, keeping mail in {args.dir}/new", flush=True
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
