"""SMTP settings and sessions against a real aiosmtpd on 127.0.0.1: plain, AUTH, STARTTLS, SMTPS;
and the rendering rules for untrusted page text, without a database."""

from __future__ import annotations

import datetime as dt
import email
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerts.digest import group_entries
from alerts.render import EventView, alert_message, clean_text, header_text, safe_href
from alerts.smtp import (
    SmtpConfigError,
    SmtpMailer,
    SmtpRejected,
    SmtpUnavailable,
    parse_smtp_url,
    settings_from_airflow_connection,
    settings_from_env,
)

# --- POLICYWATCH_SMTP_URL ----------------------------------------------------------------------------


def test_smtp_url_forms() -> None:
    plain = parse_smtp_url("smtp://mail.example.org")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("mail.example.org", 25, "none", None)
    starttls = parse_smtp_url("smtp://user%40corp:p%3Ass@mail.example.org:2525?starttls=true")
    assert (starttls.port, starttls.tls, starttls.username, starttls.password) == (
        2525,
        "starttls",
        "user@corp",
        "p:ss",
    )
    assert parse_smtp_url("smtp://h?starttls=true").port == 587
    smtps = parse_smtp_url("smtps://u:p@h", mail_from="PolicyWatch <pw@gov.example>")
    assert (smtps.port, smtps.tls, smtps.mail_domain) == (465, "ssl", "gov.example")
    assert "p@" not in smtps.describe() and "u@h:465" in smtps.describe()
    for bad in (
        "http://h",
        "smtp://",
        "smtp://h:port",
        "smtp://h?starttls=maybe",
        "smtps://h?starttls=1",
        "smtp://h?tls=1",
    ):
        with pytest.raises(SmtpConfigError):
            parse_smtp_url(bad)


def test_settings_from_env_and_airflow_connection() -> None:
    assert settings_from_env({}) is None
    env = {"POLICYWATCH_SMTP_URL": "smtp://127.0.0.1:1025", "POLICYWATCH_MAIL_FROM": "a@b.example"}
    settings = settings_from_env(env)
    assert settings is not None and settings.mail_from == "a@b.example" and settings.port == 1025
    assert settings_from_env({"POLICYWATCH_SMTP_URL": "smtp://h"}).mail_from == "policywatch@localhost"  # type: ignore[union-attr]
    # Read as Airflow's SmtpHook reads it (issue 17: one connection, one meaning): no extras = SSL.
    conn = SimpleNamespace(host="smtp.example", port=None, login="u", password="p", extra_dejson={})
    airflow = settings_from_airflow_connection(conn, mail_from="x@y.example")
    assert (airflow.host, airflow.port, airflow.tls, airflow.username) == ("smtp.example", 465, "ssl", "u")
    conn.extra_dejson = {"disable_ssl": True}
    airflow = settings_from_airflow_connection(conn)
    assert (airflow.port, airflow.tls) == (587, "starttls")
    conn.extra_dejson = {"disable_ssl": "true", "disable_tls": "true", "from_email": "a@b.example"}
    airflow = settings_from_airflow_connection(conn)
    assert (airflow.port, airflow.tls, airflow.mail_from) == (25, "none", "a@b.example")
    # An extra Airflow does not read would make the connection mean two things: refused, named.
    conn.extra_dejson = {"starttls": True}
    with pytest.raises(SmtpConfigError, match="disable_tls"):
        settings_from_airflow_connection(conn)


# --- real SMTP sessions ------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "测试"
    msg["To"] = "a@example.org"
    msg.set_content("正文")
    return msg


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


@pytest.fixture
def running() -> Iterator[list[Controller]]:
    controllers: list[Controller] = []
    yield controllers
    for controller in controllers:
        controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(running: list[Controller], sink: Sink, **kwargs: Any) -> int:
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    running.append(controller)
    return port


def test_auth_login_over_starttls(running: list[Controller], cert: tuple[Path, Path]) -> None:
    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"pw",
            b"s3cret",
        )
        return AuthResult(success=ok, handled=False)

    sink = Sink()
    port = _start(
        running, sink, authenticator=authenticator, auth_required=True, tls_context=_server_context(cert)
    )
    url = f"smtp://pw:s3cret@127.0.0.1:{port}?starttls=true&verify=false"
    with SmtpMailer(parse_smtp_url(url)) as mailer:
        mailer.send(_message(), ["a@example.org"])
    assert [m["Subject"] for m in sink.messages] == ["测试"]
    with pytest.raises(SmtpUnavailable, match="535"):
        SmtpMailer(parse_smtp_url(url.replace("s3cret", "wrong"))).connect()
    # Without login the server refuses the message: a refusal of this message, not an outage.
    anonymous = f"smtp://127.0.0.1:{port}?starttls=true&verify=false"
    with SmtpMailer(parse_smtp_url(anonymous)) as mailer, pytest.raises(SmtpRejected) as refused:
        mailer.send(_message(), ["a@example.org"])
    assert refused.value.permanent


def test_starttls(running: list[Controller], cert: tuple[Path, Path]) -> None:
    sink = Sink()
    port = _start(running, sink, tls_context=_server_context(cert), require_starttls=True)
    with SmtpMailer(parse_smtp_url(f"smtp://127.0.0.1:{port}?starttls=true&verify=false")) as mailer:
        mailer.send(_message(), ["a@example.org"])
    assert len(sink.messages) == 1
    with pytest.raises(SmtpUnavailable):  # the self-signed certificate is not trusted by default
        SmtpMailer(parse_smtp_url(f"smtp://127.0.0.1:{port}?starttls=true")).connect()
    with SmtpMailer(parse_smtp_url(f"smtp://127.0.0.1:{port}")) as mailer, pytest.raises(SmtpRejected):
        mailer.send(_message(), ["a@example.org"])  # the server demands STARTTLS first


def test_smtps(running: list[Controller], cert: tuple[Path, Path]) -> None:
    sink = Sink()
    port = _start(running, sink, ssl_context=_server_context(cert))
    with SmtpMailer(parse_smtp_url(f"smtps://127.0.0.1:{port}?verify=false")) as mailer:
        mailer.send(_message(), ["a@example.org"])
    assert len(sink.messages) == 1


def test_nothing_listening_is_unavailable() -> None:
    port = _free_port()
    with pytest.raises(SmtpUnavailable, match=r"127\.0\.0\.1"):
        SmtpMailer(parse_smtp_url(f"smtp://127.0.0.1:{port}?timeout=5")).connect()


# --- untrusted text ----------------------------------------------------------------------------------


def _view(**overrides: Any) -> EventView:
    fields: dict[str, Any] = {
        "event_id": 7,
        "kind": "changed",
        "source_id": "demo",
        "source_name": "演示站",
        "document_id": 3,
        "title": "标题",
        "url": "https://www.gov.cn/zhengce/content/1.htm",
        "href": "https://www.gov.cn/zhengce/content/1.htm",
        "issuer": "国务院",
        "doc_number": "国发〔2021〕29号",
        "published_at": "2022-01-12",
        "detected_at": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
        "summary": "1 change: 35 → 50",
        "significance": 0.2,
        "relevant": True,
        "relevance_terms": ("数字经济",),
        "old_version_id": 1,
        "new_version_id": 2,
        "policy_key": "no:国发〔2021〕29号",
    }
    fields.update(overrides)
    return EventView(**fields)


def test_header_values_cannot_carry_line_breaks() -> None:
    assert header_text("标题\r\nBcc: x@y\x00\u2028z") == "标题 Bcc: x@y z"
    assert len(header_text("长" * 500, limit=50)) == 50
    assert clean_text("a\x1b[31mb\r\nc\u202e") == "a[31mb\nc"
    assert (
        safe_href("javascript:alert(1)") is None
        and safe_href("https://a.example/x y") == "https://a.example/x%20y"
    )


def test_alert_message_from_a_hostile_view_is_harmless() -> None:
    # A view built by hand, bypassing build_event_view's cleaning: the message layer still holds.
    view = _view(
        title="规划\r\nBcc: x@y\r\n\r\n<b>body</b>",
        summary="<script>alert(1)</script>",
        url="javascript:alert(1)",
        href=None,
        kind="new",
        excerpt=("<img src=x onerror=alert(1)>",),
    )
    msg = alert_message(view, "a@example.org", "pw@example.org", "<id@example.org>", view.detected_at)
    wire = msg.as_bytes()
    head = wire.split(b"\r\n\r\n", 1)[0]
    parsed = email.message_from_bytes(wire, policy=default_policy)
    assert b"\r\nBcc:" not in head and "Bcc" not in parsed
    assert "Bcc: x@y" in parsed["Subject"]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x" in html
    assert parsed["X-Policywatch-Change-Id"] == "7" and parsed["Message-ID"] == "<id@example.org>"


def test_digest_collapses_reposts_of_one_policy() -> None:
    original = _view(event_id=1, kind="new", document_id=10)
    repost = _view(
        event_id=2,
        kind="republished",
        document_id=11,
        source_id="news",
        source_name="新闻",
        url="https://news.example/a/1.html",
    )
    same_number_elsewhere = _view(
        event_id=3, kind="new", document_id=12, source_id="prov", source_name="省站"
    )
    changed = _view(event_id=4, kind="changed", document_id=20, policy_key="doc:20", title="另一份文件")
    groups = group_entries([repost, changed, original, same_number_elsewhere])
    assert [g.source_id for g in groups] == ["demo"]
    entries = groups[0].entries
    assert [e.primary.event_id for e in entries] == [1, 4]
    assert [v.event_id for v in entries[0].events] == [1]
    assert [v.event_id for v in entries[0].also_at] == [2, 3]
