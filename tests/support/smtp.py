"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it accepts, and can be stopped or made to refuse."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage

    def header(self, name: str) -> str:
        return str(self.message[name] or "")

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return body.get_content()


@dataclass
class MailSink:
    """aiosmtpd handler: keeps what it accepts. mode: accept | tempfail (451) | reject (554) | close (421)."""

    mode: str = "accept"
    messages: list[Received] = field(default_factory=list)
    on_accept: Callable[[], None] | None = None
    delay_s: float = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.mode == "tempfail":
            return "451 4.3.0 mailbox busy, try again later"
        if self.mode == "reject":
            return "554 5.7.1 message rejected"
        if self.mode == "close":
            return "421 4.3.2 service shutting down"
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=default_policy)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, message))  # type: ignore[arg-type]
        if self.on_accept is not None:
            self.on_accept()
        return "250 2.0.0 OK: queued"

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if m.rcpt_tos == [address]]


class SmtpServer:
    """aiosmtpd on 127.0.0.1 at a fixed port, so it can be stopped (down) and started again (up)."""

    def __init__(self) -> None:
        self.sink = MailSink()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        return self.sink.messages

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
