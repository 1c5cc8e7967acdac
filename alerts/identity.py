"""Who this store is, the signed per-subscriber links of its mails, and how times are shown to people.

- The store identity (table store_identity, made by migration 0010 or on first use) goes into every
  Message-ID: two installations never produce the same one for different alerts.
- A subscriber's token: `<subscriber id>.<generation>.<signature>`, the signature an HMAC-SHA256 (with
  POLICYWATCH_SECRET_KEY, else the store's own secret) over the store id, the subscriber id and the
  token generation. Anyone holding a mail can unsubscribe its recipient (RFC 8058 wants exactly
  that, without login), nobody can forge another subscriber's token, and raising the generation
  makes the links of older mails stop working.
- POLICYWATCH_PUBLIC_URL: the external address of the web app; links in mails only when it is set.
- POLICYWATCH_DISPLAY_TIMEZONE: the zone of times shown to people (default Asia/Shanghai, 北京时间).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from alerts.smtp import SmtpConfigError
from storage.db import unit_of_work
from storage.models import StoreIdentity, utcnow

DEFAULT_TIMEZONE = "Asia/Shanghai"
_TOKEN = re.compile(r"^([1-9][0-9]{0,18})\.([1-9][0-9]{0,8})\.([A-Za-z0-9_-]{43})$")


class PublicUrlError(SmtpConfigError):
    """POLICYWATCH_PUBLIC_URL is not an http(s) URL; the message says so."""


class InvalidToken(Exception):
    """A subscriber token that is malformed, tampered with, or from an older generation."""


@dataclass(frozen=True)
class Identity:
    store_id: str
    secret: bytes


def public_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The web app's external address without a trailing slash; None when unset."""
    env = os.environ if environ is None else environ
    raw = (env.get("POLICYWATCH_PUBLIC_URL") or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise PublicUrlError(
            f"POLICYWATCH_PUBLIC_URL must be an http(s) URL without query or fragment (got {raw!r})"
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in raw):
        raise PublicUrlError("POLICYWATCH_PUBLIC_URL must not contain spaces or control characters")
    return raw.rstrip("/")


def store_identity(factory: sessionmaker[Session]) -> Identity:
    """The store's identity, made once (a concurrent first use finds the other's row)."""
    with factory() as session:
        row = session.get(StoreIdentity, 1)
        if row is not None:
            return _identity(row)
    try:
        with unit_of_work(factory) as session:
            session.add(
                StoreIdentity(
                    id=1, store_id=uuid.uuid4().hex, secret=secrets.token_hex(32), created_at=utcnow()
                )
            )
    except IntegrityError:
        pass
    with factory() as session:
        row = session.get(StoreIdentity, 1)
        assert row is not None
        return _identity(row)


def identity_of(row: StoreIdentity) -> Identity:
    """The identity a stored row gives (POLICYWATCH_SECRET_KEY, when set, is the secret)."""
    return _identity(row)


def _identity(row: StoreIdentity) -> Identity:
    # An operator's secret wins: several stores (or a restored backup) can then share tokens.
    configured = (os.environ.get("POLICYWATCH_SECRET_KEY") or "").strip()
    return Identity(row.store_id, (configured or row.secret).encode())


def _signature(identity: Identity, subscriber_id: int, generation: int) -> str:
    message = f"policywatch-subscriber|{identity.store_id}|{subscriber_id}|{generation}".encode()
    mac = hmac.new(identity.secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(identity: Identity, subscriber_id: int, generation: int = 1) -> str:
    return f"{subscriber_id}.{generation}.{_signature(identity, subscriber_id, generation)}"


def read_token(identity: Identity, token: str) -> tuple[int, int]:
    """(subscriber id, generation) of a token whose signature holds; InvalidToken otherwise.

    The caller still checks the generation against the subscriber's current one.
    """
    match = _TOKEN.match(token or "")
    if match is None:
        raise InvalidToken("malformed token")
    subscriber_id, generation = int(match.group(1)), int(match.group(2))
    if not hmac.compare_digest(match.group(3), _signature(identity, subscriber_id, generation)):
        raise InvalidToken("bad signature")
    return subscriber_id, generation


# --- times for people --------------------------------------------------------------------------------


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def valid_zone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def display_zone_name() -> str:
    name = (os.environ.get("POLICYWATCH_DISPLAY_TIMEZONE") or "").strip() or DEFAULT_TIMEZONE
    return name if valid_zone(name) else DEFAULT_TIMEZONE


def zone_label(name: str) -> str:
    return "北京时间" if name in ("Asia/Shanghai", "Asia/Chongqing", "PRC", "Asia/Harbin") else name


def local_time(value: datetime | str | None, *, seconds: bool = False, label: bool = True) -> str:
    """A time for people: in the display zone (北京时间 by default), no microseconds.

    Accepts the ISO strings the store's queries return; naive values are UTC (as the store keeps them).
    """
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        value = parsed
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    name = display_zone_name()
    text = value.astimezone(zone(name)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {zone_label(name)}" if label else text
