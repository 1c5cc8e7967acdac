"""SMTP settings (POLICYWATCH_SMTP_URL, an Airflow connection) and a connection that sends messages.

Failures are sorted into two kinds, because delivery reacts differently:
`SmtpUnavailable` (no connection, the server hung up or said 421, login failed): stop this pass, every
alert stays pending; `SmtpRejected`: this one message was refused, the others may still go.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_MAIL_FROM = "policywatch@localhost"
DEFAULT_TIMEOUT_S = 30.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SmtpConfigError(ValueError):
    """POLICYWATCH_SMTP_URL (or the connection) is malformed; the message says what is wrong."""


class SmtpUnavailable(Exception):
    """The server cannot be used right now (down, hung up, 421, login refused): retry later."""


class SmtpRejected(Exception):
    """The server refused this message; `permanent` for a 5xx answer."""

    def __init__(self, message: str, code: int | None):
        super().__init__(message)
        self.code = code
        self.permanent = code is not None and code >= 500


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str = "none"  # none | starttls | ssl (smtps)
    username: str | None = None
    password: str | None = None
    mail_from: str = DEFAULT_MAIL_FROM
    timeout_s: float = DEFAULT_TIMEOUT_S
    verify_tls: bool = True
    # POLICYWATCH_PUBLIC_URL (the web app's external address): links and List-Unsubscribe in mails.
    public_url: str | None = None

    @property
    def mail_domain(self) -> str:
        """The domain of the sender address: the right-hand side of our Message-IDs."""
        domain = self.mail_from.rpartition("@")[2].strip(" >") or "localhost"
        return "".join(ch for ch in domain if ch.isalnum() or ch in ".-") or "localhost"

    def describe(self) -> str:
        """For logs and messages: never the password."""
        user = f"{self.username}@" if self.username else ""
        scheme = "smtps" if self.tls == "ssl" else "smtp"
        extra = "?starttls=true" if self.tls == "starttls" else ""
        return f"{scheme}://{user}{self.host}:{self.port}{extra}"


def parse_smtp_url(url: str, mail_from: str | None = None) -> SmtpSettings:
    """smtp://[user:pass@]host[:port][?starttls=true] or smtps://…; also ?timeout=S and ?verify=false.

    Default ports: 25 (smtp), 587 (smtp with starttls), 465 (smtps). user and pass are %-decoded.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise SmtpConfigError(
            f"POLICYWATCH_SMTP_URL must start with smtp:// or smtps:// (got {parts.scheme!r})"
        )
    if not parts.hostname:
        raise SmtpConfigError("POLICYWATCH_SMTP_URL has no host")
    query = {k: v[-1].strip().lower() for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - {"starttls", "timeout", "verify"}
    if unknown:
        raise SmtpConfigError(f"POLICYWATCH_SMTP_URL: unknown parameter(s) {', '.join(sorted(unknown))}")
    starttls = _flag(query.get("starttls"), "starttls", default=False)
    if parts.scheme == "smtps" and starttls:
        raise SmtpConfigError("POLICYWATCH_SMTP_URL: smtps:// is TLS already; drop ?starttls=true")
    tls = "ssl" if parts.scheme == "smtps" else ("starttls" if starttls else "none")
    try:
        port = parts.port or {"ssl": 465, "starttls": 587, "none": 25}[tls]
    except ValueError as exc:
        raise SmtpConfigError(f"POLICYWATCH_SMTP_URL: bad port ({exc})") from exc
    timeout = DEFAULT_TIMEOUT_S
    if "timeout" in query:
        try:
            timeout = float(query["timeout"])
        except ValueError as exc:
            raise SmtpConfigError("POLICYWATCH_SMTP_URL: timeout must be a number of seconds") from exc
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        mail_from=mail_from or DEFAULT_MAIL_FROM,
        timeout_s=timeout,
        verify_tls=_flag(query.get("verify"), "verify", default=True),
    )


def _flag(value: str | None, name: str, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SmtpConfigError(f"POLICYWATCH_SMTP_URL: {name} must be true or false")


def settings_from_env(environ: dict[str, str] | None = None) -> SmtpSettings | None:
    """The settings of CONTRACT.md's environment; None when POLICYWATCH_SMTP_URL is unset."""
    env = os.environ if environ is None else environ
    url = (env.get("POLICYWATCH_SMTP_URL") or "").strip()
    if not url:
        return None
    from dataclasses import replace

    from alerts.identity import public_url_from_env

    settings = parse_smtp_url(url, mail_from=(env.get("POLICYWATCH_MAIL_FROM") or "").strip() or None)
    return replace(settings, public_url=public_url_from_env(env))


# Extras that Airflow's SMTP provider does not read: honouring them here would make one connection
# mean one thing to PolicyWatch's alerts and another to Airflow's notifiers.
_NOT_AIRFLOW_EXTRAS = {
    "ssl": "disable_ssl",
    "starttls": "disable_tls",
    "verify": "ssl_context",
}


def _extra_flag(extra: dict[str, Any], name: str) -> bool:
    value = extra.get(name, False)
    if isinstance(value, str):  # a connection URI's extras arrive as strings
        # SmtpHook takes bool() of the text: any non-empty text, "false" included, is true there.
        # Reading "false" as false here would give the connection two meanings: refused instead.
        if value.strip().lower() in _TRUE:
            return True
        if value == "":
            return False
        raise SmtpConfigError(
            f"the Airflow SMTP connection's extra {name}={value!r}: Airflow reads any non-empty text "
            f"as true; write true, or leave {name} out for false"
        )
    return bool(value)


def settings_from_airflow_connection(
    conn: Any, mail_from: str | None = None, public_url: str | None = None
) -> SmtpSettings:
    """From an Airflow SMTP connection, read exactly as Airflow's SMTP provider (SmtpHook) reads it.

    SmtpHook: implicit TLS unless extra `disable_ssl` is true; STARTTLS unless `disable_tls` is true
    (over implicit TLS it has nothing to add); `ssl_context` "none" = no certificate check; extras
    `from_email` and `timeout` (30 s). So a connection with no extras is SSL (port 465 by default),
    for our alerts as for Airflow's notifiers; a plain local server needs both disable_* extras.
    Extras SmtpHook ignores (`ssl`, `starttls`, `verify`) are refused with the one to use instead.
    Duck-typed, so this module does not import Airflow.
    """
    extra: dict[str, Any] = dict(getattr(conn, "extra_dejson", None) or {})
    ignored = sorted(set(extra) & set(_NOT_AIRFLOW_EXTRAS))
    if ignored:
        raise SmtpConfigError(
            "the Airflow SMTP connection's extra "
            + ", ".join(f"{name!r} (Airflow reads {_NOT_AIRFLOW_EXTRAS[name]!r})" for name in ignored)
            + " is not read by Airflow's SMTP provider: use the extra Airflow reads"
        )
    use_ssl = not _extra_flag(extra, "disable_ssl")
    starttls = not _extra_flag(extra, "disable_tls")
    tls = "ssl" if use_ssl else ("starttls" if starttls else "none")
    ssl_context = extra.get("ssl_context")
    if ssl_context not in (None, "default", "none"):
        raise SmtpConfigError("the Airflow SMTP connection's extra ssl_context must be 'default' or 'none'")
    if not conn.host:
        raise SmtpConfigError("the Airflow SMTP connection has no host")
    if public_url is None:
        from alerts.identity import public_url_from_env

        public_url = public_url_from_env()
    try:
        timeout = float(extra.get("timeout", DEFAULT_TIMEOUT_S))
    except (TypeError, ValueError) as exc:
        raise SmtpConfigError("the Airflow SMTP connection's extra timeout must be a number") from exc
    return SmtpSettings(
        host=conn.host,
        port=int(conn.port or {"ssl": 465, "starttls": 587, "none": 25}[tls]),
        tls=tls,
        username=conn.login or None,
        password=conn.password or None,
        mail_from=mail_from or extra.get("from_email") or DEFAULT_MAIL_FROM,
        timeout_s=timeout,
        verify_tls=ssl_context != "none",
        public_url=public_url,
    )


def configured_settings() -> SmtpSettings | None:
    """POLICYWATCH_SMTP_URL if set; else, under Airflow, the connection POLICYWATCH_SMTP_CONN_ID
    names (read as Airflow reads it); else None."""
    settings = settings_from_env()
    conn_id = os.environ.get("POLICYWATCH_SMTP_CONN_ID")
    if settings is None and conn_id:
        from airflow.sdk import BaseHook

        settings = settings_from_airflow_connection(
            BaseHook.get_connection(conn_id), mail_from=os.environ.get("POLICYWATCH_MAIL_FROM")
        )
    return settings


class SmtpMailer:
    """One SMTP session: `with SmtpMailer(settings) as mailer: mailer.send(message, [rcpt])`."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpMailer:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.settings.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def connect(self) -> None:
        s = self.settings
        try:
            if s.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_s, context=self._tls_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            self._smtp = smtp
            smtp.ehlo()
            if s.tls == "starttls":
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SmtpUnavailable(f"{s.describe()}: {_describe(exc)}") from exc

    def send(self, message: EmailMessage, recipients: list[str]) -> None:
        """Returns once the server accepted the message for every recipient."""
        if self._smtp is None:
            raise SmtpUnavailable("not connected")
        try:
            refused = self._smtp.send_message(message, from_addr=self.settings.mail_from, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            code = max((c for c, _ in exc.recipients.values()), default=None)
            raise _rejected_or_unavailable(f"recipient refused: {_describe(exc)}", code) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, 421 ...
            raise _rejected_or_unavailable(_describe(exc), exc.smtp_code) from exc
        except (OSError, smtplib.SMTPException) as exc:  # disconnected, timeout
            self._smtp = None
            raise SmtpUnavailable(_describe(exc)) from exc
        if refused:  # some recipients refused (we send to one at a time, so this is rare)
            code = max(c for c, _ in refused.values())
            raise _rejected_or_unavailable(f"recipient refused: {refused}", code)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _rejected_or_unavailable(message: str, code: int | None) -> Exception:
    # 421: "service not available, closing channel": the server, not this message, is the problem.
    if code == 421:
        return SmtpUnavailable(message)
    return SmtpRejected(message, code)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = (
            exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        return f"{exc.smtp_code} {' '.join(str(detail).split())}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
