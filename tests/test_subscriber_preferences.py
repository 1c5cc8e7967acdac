# ruff: noqa: F811  (the fixtures `world` and `smtp` come from tests.test_alerts)
"""Issue 17: subscribers who can see, tune and leave their alerts.

End to end on the real pipeline, a real SMTP server on 127.0.0.1 (aiosmtpd), real SQLite and
PostgreSQL stores and the real web app (`policywatch web` in its own process, restarted in the
middle): RFC 8058 one-click unsubscribe, signed per-subscriber tokens, the preferences page, the
digest at the subscriber's local hour (injected clock), links to the diff and the history, and
Message-IDs that differ between two stores.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select

from alerts import preferences as prefs
from alerts import send_due_digests, settings_from_env
from alerts.identity import make_token, read_token, store_identity
from policywatch.cli import main
from storage.models import SentMail, Subscriber, SubscriberPreference
from tests.support.smtp import Received, SmtpServer
from tests.test_alerts import TITLE, AlertWorld, smtp, subscriber, world  # noqa: F401  (fixtures)

PROJECT = Path(__file__).resolve().parent.parent
PUBLIC = "https://pw.example.org/watch"


@pytest.fixture
def public(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POLICYWATCH_PUBLIC_URL", PUBLIC + "/")  # a trailing slash is not doubled
    return PUBLIC


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def web_app(db_url: str) -> Iterator[str]:
    """`policywatch web` in a process of its own on 127.0.0.1; stopped (SIGTERM) at the end."""
    port = free_port()
    env = {**os.environ, "POLICYWATCH_DATABASE_URL": db_url, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "policywatch.cli", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                requests.get(base + "/mail", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "policywatch web did not start"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def local(mail_url: str, base: str) -> str:
    """A link from a mail (on the public address) as a URL of the app under test."""
    assert mail_url.startswith(PUBLIC + "/"), mail_url
    return base + mail_url[len(PUBLIC) :]


def list_unsubscribe(mail: Received) -> str:
    match = re.fullmatch(r"<(https://[^>]+)>", mail.header("List-Unsubscribe"))
    assert match, mail.header("List-Unsubscribe")
    return match.group(1)


def opted_out(world: AlertWorld, address: str) -> datetime | None:
    with world.sessions() as s:
        sub = s.scalars(select(Subscriber).where(Subscriber.email == address)).one()
        own = s.get(SubscriberPreference, sub.id)
        return own.opted_out_at if own else None


def subscriber_id(world: AlertWorld, address: str) -> int:
    with world.sessions() as s:
        return s.scalars(select(Subscriber.id).where(Subscriber.email == address)).one()


# --- headers, links, tokens ----------------------------------------------------------------------------


def test_every_alert_and_digest_carries_one_click_unsubscribe_and_links(
    world: AlertWorld, smtp: SmtpServer, public: str
) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("a@example.org"),
            subscriber("b@example.org"),
            subscriber("daily@example.org", digest=True),
        ]
    )
    world.baseline()
    world.change_figure()
    world.cycle()
    assert send_due_digests(world.engine, settings_from_env(), force=True).messages_sent == 1
    assert len(smtp.messages) == 3
    urls = {}
    [event] = world.events()
    for mail in smtp.messages:
        address = mail.rcpt_tos[0]
        assert mail.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        url = list_unsubscribe(mail)
        assert url.startswith(f"{PUBLIC}/unsubscribe/")
        urls[address] = url
        token = url.rsplit("/", 1)[1]
        text, html = mail.part("plain"), mail.part("html")
        # The visible "unsubscribe / change what you follow" links, in both parts.
        for body in (text, html):
            assert url in body and f"{PUBLIC}/preferences/{token}" in body
            assert "unsubscribe" in body and "change what you follow" in body
            # Links into the web app: the change's diff and the document's history.
            assert f"{PUBLIC}/diff/{event.old_version_id}/{event.new_version_id}" in body
            assert f"{PUBLIC}/documents/{event.document_id}" in body
        # A person's time: 北京时间, minutes, no microseconds.
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d 北京时间", text)
        assert not re.search(r"\d\d:\d\d:\d\d\.\d", text + html)
        # The token is this subscriber's, signed by this store.
        identity = store_identity(world.sessions)
        assert read_token(identity, token) == (subscriber_id(world, address), 1)
    assert len(set(urls.values())) == 3  # a different token per subscriber
    assert smtp.sink.to("daily@example.org")[0].header("X-Policywatch-Event") == "digest"


def test_without_a_public_url_mails_carry_no_web_links(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = subscriber("a@example.org")
    world.baseline()
    world.change_figure()
    world.cycle()
    [mail] = smtp.messages
    assert mail.header("List-Unsubscribe") == "" and mail.header("List-Unsubscribe-Post") == ""
    assert "/unsubscribe/" not in mail.part("plain") and "/diff/" not in mail.part("html")


def test_a_bad_public_url_is_a_configuration_error(
    world: AlertWorld, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    world.subscribers = subscriber("a@example.org")
    monkeypatch.setenv("POLICYWATCH_PUBLIC_URL", "javascript:alert(1)")
    assert main(["--config", str(world.config_path), "deliver"]) == 2
    assert "POLICYWATCH_PUBLIC_URL" in capsys.readouterr().err


def test_tokens_are_signed_per_subscriber_and_store(world: AlertWorld) -> None:
    from storage.db import ensure_schema

    ensure_schema(world.engine)
    identity = store_identity(world.sessions)
    assert store_identity(world.sessions) == identity  # made once, then read
    token = make_token(identity, 7, 1)
    assert read_token(identity, token) == (7, 1)
    forged = [
        token.replace("7.", "8.", 1),  # another subscriber's id under this signature
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # a changed signature
        token.replace(".1.", ".2.", 1),  # another generation
        "7.1.short",
        "",
    ]
    from alerts.identity import Identity, InvalidToken

    for bad in forged:
        with pytest.raises(InvalidToken):
            read_token(identity, bad)
    with pytest.raises(InvalidToken):  # another store's secret
        read_token(Identity(identity.store_id, b"another secret"), token)


# --- one-click unsubscribe through the real web app ------------------------------------------------


def test_one_click_unsubscribe_holds_across_a_restart_and_only_for_that_subscriber(
    world: AlertWorld, smtp: SmtpServer, public: str, db_url: str
) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("leaver@example.org"),
            subscriber("stayer@example.org"),
            subscriber("daily-leaver@example.org", digest=True),
        ]
    )
    world.baseline()
    world.change_figure()
    world.cycle()
    send_due_digests(world.engine, settings_from_env(), force=True)
    leaver_url = list_unsubscribe(smtp.sink.to("leaver@example.org")[0])
    daily_url = list_unsubscribe(smtp.sink.to("daily-leaver@example.org")[0])
    stayer_url = list_unsubscribe(smtp.sink.to("stayer@example.org")[0])

    with web_app(db_url) as base:
        # A tampered token: 403, and nothing changes.
        head, _, signature = leaver_url.rpartition(".")
        tampered = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
        for url in (tampered, leaver_url.replace("/unsubscribe/", "/unsubscribe/9"), head + ".x"):
            answer = requests.post(local(url, base), data={"List-Unsubscribe": "One-Click"}, timeout=10)
            assert 400 <= answer.status_code < 500, answer.status_code
        another = local(stayer_url, base).replace(
            stayer_url.rsplit("/", 1)[1].split(".")[0] + ".",
            leaver_url.rsplit("/", 1)[1].split(".")[0] + ".",
            1,
        )
        assert requests.post(another, data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code == 403
        assert opted_out(world, "leaver@example.org") is None
        # A GET only asks to confirm (mail scanners follow links): nothing changes.
        page = requests.get(local(leaver_url, base), timeout=10)
        assert page.status_code == 200 and "Unsubscribe?" in page.text
        assert opted_out(world, "leaver@example.org") is None
        # A POST without the RFC 8058 body is refused.
        assert requests.post(local(leaver_url, base), data={"x": "y"}, timeout=10).status_code == 400
        assert opted_out(world, "leaver@example.org") is None
        # The one-click POST, as mail providers send it (urlencoded, or multipart as RFC 8058 allows):
        # no login, no cookie.
        answer = requests.post(
            local(leaver_url, base),
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=10,
        )
        assert answer.status_code == 200 and "Unsubscribed" in answer.text
        answer = requests.post(
            local(daily_url, base), files={"List-Unsubscribe": (None, "One-Click")}, timeout=10
        )
        assert answer.status_code == 200 and "Unsubscribed" in answer.text
        # Twice is harmless.
        assert requests.post(local(leaver_url, base), data={"List-Unsubscribe": "One-Click"}, timeout=10).ok

    # The web app restarts; the opt-out is in the store.
    with web_app(db_url) as base:
        page = requests.get(local(leaver_url.replace("/unsubscribe/", "/preferences/"), base), timeout=10)
        assert page.status_code == 200 and "已退订" in page.text
    assert opted_out(world, "leaver@example.org") is not None

    # A config sync (every run does one) does not undo it; the others still get theirs.
    sent_before = len(smtp.messages)
    world.change_figure("8354", "8356")
    summary = world.cycle()
    assert summary.changed == 1
    assert send_due_digests(world.engine, settings_from_env(), force=True).messages_sent == 0
    assert [m.rcpt_tos[0] for m in smtp.messages[sent_before:]] == ["stayer@example.org"]
    assert main(["--config", str(world.config_path), "digest", "--force"]) == 0
    assert len(smtp.messages) == sent_before + 1


def test_opting_out_cancels_what_was_pending(world: AlertWorld, smtp: SmtpServer, public: str) -> None:
    world.subscribers = "\n".join([subscriber("a@example.org"), subscriber("b@example.org")])
    world.baseline()
    smtp.stop()
    world.change_figure()
    assert world.cycle().alerts_pending == 2
    assert prefs.opt_out(world.sessions, subscriber_id(world, "a@example.org"), "one-click") is True
    assert prefs.opt_out(world.sessions, subscriber_id(world, "a@example.org"), "one-click") is False
    smtp.start()
    summary = world.cycle()
    assert (summary.alerts_sent, summary.alerts_pending) == (1, 0)
    assert [m.rcpt_tos for m in smtp.messages] == [["b@example.org"]]
    statuses = {r.subscriber_id: (r.status, r.last_error) for r in world.outbox()}
    assert statuses[subscriber_id(world, "a@example.org")] == ("cancelled", "unsubscribed (one-click)")


# --- the preferences page ------------------------------------------------------------------------------


def test_preferences_page_changes_what_a_subscriber_follows_and_refuses_bad_input(
    world: AlertWorld, smtp: SmtpServer, public: str, db_url: str
) -> None:
    world.subscribers = subscriber("tuner@example.org", sources=["news"])  # the config: news only
    world.baseline()
    world.change_figure()
    world.cycle()
    assert smtp.messages == []  # the change is on demo, which the config does not follow
    identity = store_identity(world.sessions)
    sid = subscriber_id(world, "tuner@example.org")
    token = make_token(identity, sid, 1)
    with web_app(db_url) as base:
        page = requests.get(f"{base}/preferences/{token}", timeout=10)
        assert page.status_code == 200 and "tuner@example.org" in page.text and "演示站" in page.text
        # Bad input: a clear 400 naming the field, and nothing saved.
        for bad, field in (
            ({"events": ["changed"], "digest_hour": "25", "digest_timezone": "Asia/Shanghai"}, "digest hour"),
            ({"events": ["changed"], "digest_hour": "8", "digest_timezone": "Mars/Olympus"}, "time zone"),
            ({"events": [], "digest_hour": "8", "digest_timezone": "Asia/Shanghai"}, "events"),
            ({"events": ["changed"], "sources": ["nowhere"], "digest_timezone": "UTC"}, "sources"),
        ):
            answer = requests.post(f"{base}/preferences/{token}", data={"action": "save", **bad}, timeout=10)
            assert answer.status_code == 400 and field in answer.text, (bad, answer.text[-500:])
        with world.sessions() as s:
            assert s.get(SubscriberPreference, sid) is None
        # Follow demo, keyword 数字经济增加值 (in the changed sentence), changes only, immediately.
        answer = requests.post(
            f"{base}/preferences/{token}",
            data={
                "action": "save",
                "sources": ["demo"],
                "keywords": "数字经济增加值，区块链",
                "events": ["changed", "removed"],
                "mode": "immediate",
                "digest_hour": "20",
                "digest_timezone": "Asia/Tokyo",
            },
            timeout=10,
        )
        assert answer.status_code == 200 and "saved" in answer.text
    with world.sessions() as s:
        current = prefs.load(s, sid)
    assert current is not None and current.custom
    assert current.rules == (
        prefs.Rule(("demo",), ("数字经济增加值", "区块链"), ("changed", "removed"), False),
    )
    assert (current.digest_hour, current.digest_timezone) == (20, "Asia/Tokyo")
    # The next run syncs the config (news only) again: the subscriber's own choice wins.
    world.change_figure("8354", "8356")
    world.cycle()
    [mail] = smtp.messages
    assert mail.rcpt_tos == ["tuner@example.org"] and mail.header("X-Policywatch-Source") == "demo"
    # A keyword that is not in the change: nothing.
    prefs.save(
        world.sessions,
        sid,
        sources=["*"],
        keywords=["远景目标纲要"],
        events=["changed"],
        digest=False,
        digest_hour=8,
        digest_timezone="Asia/Shanghai",
    )
    world.change_figure("8354", "8357")
    world.cycle()
    assert len(smtp.messages) == 1


def test_resubscribing_issues_new_links_and_old_ones_stop_working(
    world: AlertWorld, smtp: SmtpServer, public: str, db_url: str
) -> None:
    world.subscribers = subscriber("back@example.org")
    world.baseline()
    sid = subscriber_id(world, "back@example.org")
    identity = store_identity(world.sessions)
    old = make_token(identity, sid, 1)
    with web_app(db_url) as base:
        assert requests.post(
            f"{base}/unsubscribe/{old}", data={"List-Unsubscribe": "One-Click"}, timeout=10
        ).ok
        page = requests.post(f"{base}/preferences/{old}", data={"action": "resubscribe"}, timeout=10)
        assert page.status_code == 200
        new = make_token(identity, sid, 2)
        assert f"/preferences/{new}" in page.text
        # The link of the older mails: 403, and the subscriber stays subscribed.
        assert (
            requests.post(
                f"{base}/unsubscribe/{old}", data={"List-Unsubscribe": "One-Click"}, timeout=10
            ).status_code
            == 403
        )
        assert requests.get(f"{base}/preferences/{old}", timeout=10).status_code == 403
    assert opted_out(world, "back@example.org") is None
    world.change_figure()
    world.cycle()
    [mail] = smtp.messages
    assert list_unsubscribe(mail) == f"{PUBLIC}/unsubscribe/{new}"


# --- digest at the subscriber's local hour (injected clock) ------------------------------------------


def test_digest_at_the_chosen_local_hour_once_a_local_day_none_when_empty(
    world: AlertWorld, smtp: SmtpServer
) -> None:
    world.subscribers = "\n".join(
        [subscriber("tokyo@example.org", digest=True), subscriber("beijing@example.org", digest=True)]
    )
    world.baseline()
    tokyo = ZoneInfo("Asia/Tokyo")
    prefs.save(
        world.sessions,
        subscriber_id(world, "tokyo@example.org"),
        sources=["*"],
        keywords=[],
        events=["new", "changed", "removed"],
        digest=True,
        digest_hour=20,
        digest_timezone="Asia/Tokyo",
    )
    settings = settings_from_env()
    # Nothing waiting: at any hour, nothing is sent.
    for hours in range(0, 48, 5):
        assert (
            send_due_digests(
                world.engine, settings, now=datetime.now(UTC) + timedelta(hours=hours)
            ).messages_sent
            == 0
        )
    world.change_figure()
    world.cycle()
    queued = datetime.now(UTC)
    eight_pm = prefs.next_slot(queued, 20, "Asia/Tokyo")  # Tokyo's chosen hour
    eight_am = prefs.next_slot(queued)  # the default: 08:00 Asia/Shanghai
    assert eight_pm.astimezone(tokyo).hour == 20 and eight_am.astimezone(UTC).hour == 0

    def sent_at(when: datetime) -> list[str]:
        before = len(smtp.messages)
        send_due_digests(world.engine, settings, now=when)
        return [m.rcpt_tos[0] for m in smtp.messages[before:]]

    # The clock moves forward through both slots: each subscriber's digest comes at its own local
    # hour (not a minute before), and once that local day (not an hour later, nor the next morning).
    checkpoints = sorted(
        {
            t + d
            for t in (eight_pm, eight_am)
            for d in (timedelta(minutes=-1), timedelta(0), timedelta(hours=1))
        }
        | {eight_pm + timedelta(hours=11), eight_am + timedelta(hours=23)}
    )
    got = {when: sent_at(when) for when in checkpoints}
    assert {w: r for w, r in got.items() if r} == (
        {eight_pm: ["tokyo@example.org"], eight_am: ["beijing@example.org"]}
        if eight_pm != eight_am
        else {eight_pm: ["tokyo@example.org", "beijing@example.org"]}
    )
    [digest] = smtp.sink.to("beijing@example.org")
    assert digest.header("X-Policywatch-Event") == "digest"
    # Empty the next day: nothing at either hour.
    last = max(eight_pm, eight_am)
    assert sent_at(last + timedelta(days=1)) == []
    # A change queued now goes in the next digests, covering everything since the last one.
    world.change_figure("8354", "8356")
    world.cycle()
    later = last + timedelta(days=2)
    assert sorted(sent_at(later)) == ["beijing@example.org", "tokyo@example.org"]
    assert sent_at(later + timedelta(minutes=30)) == []
    assert len(smtp.sink.to("tokyo@example.org")) == 2


def test_digest_slots_follow_the_zone() -> None:
    shanghai_now = datetime(2026, 12, 3, 7, 59, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert prefs.last_slot(shanghai_now) == datetime(2026, 12, 2, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert prefs.next_slot(shanghai_now) == datetime(2026, 12, 3, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    # 08:00 Beijing is 00:00 UTC
    assert prefs.last_slot(datetime(2026, 12, 3, 0, 0, tzinfo=UTC)) == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    # A zone with daylight saving: 08:00 local on both sides of the change.
    ny = ZoneInfo("America/New_York")
    assert prefs.next_slot(
        datetime(2026, 3, 7, 12, tzinfo=UTC), 8, "America/New_York"
    ).utcoffset() == timedelta(hours=-5)
    assert prefs.next_slot(datetime(2026, 3, 8, 14, tzinfo=UTC), 8, "America/New_York") == datetime(
        2026, 3, 9, 8, tzinfo=ny
    )


# --- Message-IDs never collide between stores ------------------------------------------------------


def test_two_stores_never_produce_the_same_message_id(
    world: AlertWorld, smtp: SmtpServer, tmp_path: Path, site
) -> None:  # type: ignore[no-untyped-def]
    other = AlertWorld(site, f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    (tmp_path / "other").mkdir()
    try:
        for w in (world, other):
            w.subscribers = subscriber("same@example.org")
            w.baseline() if w is world else w.cycle()
        world.change_figure()
        world.cycle()
        other.cycle()
        first_ids = [e.id for e in world.events()]
        second_ids = [e.id for e in other.events()]
        assert first_ids == second_ids == [first_ids[0]]  # the same event id in both stores
        mails = smtp.sink.to("same@example.org")
        assert len(mails) == 2
        assert mails[0].header("Message-ID") != mails[1].header("Message-ID")
        assert store_identity(world.sessions).store_id != store_identity(other.sessions).store_id
    finally:
        other.engine.dispose()


# --- the Mail page and operator notices ---------------------------------------------------------------


def test_mail_page_lists_every_mail_sent_newest_first_as_html_and_text(
    world: AlertWorld, smtp: SmtpServer, public: str, db_url: str
) -> None:
    from alerts.notices import send_notice

    world.subscribers = "\n".join([subscriber("a@example.org"), subscriber("daily@example.org", digest=True)])
    world.baseline()
    world.change_figure()
    world.cycle()
    send_due_digests(world.engine, settings_from_env(), force=True)
    assert send_notice(
        world.engine, settings_from_env(), ["ops@example.org"], "demo: fetch failed", "错误: 超时"
    )
    assert len(smtp.messages) == 3
    with world.sessions() as s:
        records = list(s.scalars(select(SentMail).order_by(SentMail.id)))
    assert [r.kind for r in records] == ["alert", "digest", "notice"]
    assert records[0].message_id == smtp.sink.to("a@example.org")[0].header("Message-ID")
    with web_app(db_url) as base:
        page = requests.get(f"{base}/mail", timeout=10)
        assert page.status_code == 200
        subjects = re.findall(r'<a href="/mail/(\d+)">([^<]*)</a>', page.text)
        assert [int(i) for i, _ in subjects] == [r.id for r in reversed(records)]  # newest first
        assert TITLE in page.text and "每日摘要" in page.text and "demo: fetch failed" in page.text
        alert = requests.get(f"{base}/mail/{records[0].id}", timeout=10)
        assert alert.status_code == 200 and "[-8354-]{+8355+}" in alert.text  # the text part
        html = requests.get(f"{base}/mail/{records[0].id}/html", timeout=10)
        assert "sandbox" in html.headers["Content-Security-Policy"]
        assert re.search(r"<del [^>]*>8354</del><ins [^>]*>8355</ins>", html.text)
        assert requests.get(f"{base}/mail/999999", timeout=10).status_code == 404
        # Operators: subscribers and the next digest's preview (nothing is sent by looking).
        world.change_figure("8354", "8356")
        world.cycle()
        listing = requests.get(f"{base}/subscribers", timeout=10)
        assert listing.status_code == 200 and "daily@example.org" in listing.text
        sid = subscriber_id(world, "daily@example.org")
        preview = requests.get(f"{base}/subscribers/{sid}/digest", timeout=10)
        assert preview.status_code == 200 and "8356" in preview.text and "preview only" in preview.text
    assert len(smtp.messages) == 4  # the immediate alert of the second change; the digest waits


# --- one meaning for Airflow's smtp_default; the Airflow login lets the token pages through ------------


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"disable_ssl": True},
        {"disable_tls": True},
        {"disable_ssl": True, "disable_tls": True},
        {"disable_ssl": "true", "disable_tls": "true"},
        {"disable_ssl": False, "disable_tls": False},
    ],
)
def test_an_airflow_smtp_connection_means_what_airflow_reads(extra: dict[str, object]) -> None:
    from airflow.models.connection import Connection
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from alerts.smtp import settings_from_airflow_connection

    conn = Connection(conn_id="smtp_default", conn_type="smtp", host="smtp.example", port=None, extra=extra)
    hook = SmtpHook.__new__(SmtpHook)  # its properties read only .conn: no metadata database needed
    hook.conn = conn
    ours = settings_from_airflow_connection(conn, public_url="")
    airflow_tls = "ssl" if hook.use_ssl else ("starttls" if hook.smtp_starttls else "none")
    assert ours.tls == airflow_tls


def test_an_airflow_smtp_extra_read_two_ways_is_refused() -> None:
    from types import SimpleNamespace

    from alerts.smtp import SmtpConfigError, settings_from_airflow_connection

    for extra, named in (({"disable_tls": "false"}, "disable_tls"), ({"ssl": True}, "disable_ssl")):
        conn = SimpleNamespace(host="h", port=None, login=None, password=None, extra_dejson=extra)
        with pytest.raises(SmtpConfigError, match=named):
            settings_from_airflow_connection(conn, public_url="")


def test_inside_airflow_only_the_token_pages_skip_the_login(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from policywatch.web.airflow_auth import AirflowLoginRequired
    from policywatch.web.app import create_app

    app = create_app(sqlite_url)
    app.add_middleware(AirflowLoginRequired)
    with TestClient(app) as client:
        json = {"Accept": "application/json"}
        assert client.get("/mail", headers=json).status_code == 401
        assert client.get("/subscribers", headers=json).status_code == 401
        # The app itself checks the token: a forged one is 403, never a login prompt.
        answer = client.post("/unsubscribe/1.1." + "A" * 43, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 403
        assert client.get("/preferences/1.1." + "A" * 43, headers=json).status_code == 403
        assert client.get("/unsubscribe/..%2Fmail", headers=json).status_code in (403, 404)


def test_a_task_failure_notice_goes_through_the_alerts_path_and_is_recorded(
    world: AlertWorld, smtp: SmtpServer
) -> None:
    from types import SimpleNamespace

    from alerts.notices import FailureNotifier
    from storage.db import ensure_schema

    ensure_schema(world.engine)
    ti = SimpleNamespace(dag_id="policywatch_demo", task_id="discover", try_number=4, log_url="http://x/log")
    notifier = FailureNotifier(["ops@example.org"], settings=settings_from_env)
    notifier({"ti": ti, "exception": RuntimeError("源站超时\r\nBcc: x@y")})
    [mail] = smtp.messages
    assert mail.rcpt_tos == ["ops@example.org"]
    assert mail.header("Subject") == "[PolicyWatch] policywatch_demo: discover failed"
    assert mail.header("X-Policywatch-Event") == "notice" and "Bcc" not in mail.message
    assert "源站超时" in mail.part("plain")
    with world.sessions() as s:
        [record] = s.scalars(select(SentMail))
    assert (record.kind, record.recipient) == ("notice", "ops@example.org")
    # The server down: the callback logs, never raises (it would hide the task's own error).
    smtp.stop()
    notifier({"ti": ti, "exception": RuntimeError("again")})
    smtp.start()


def test_a_failed_run_is_one_notice_and_a_degraded_sources_run_none(
    world: AlertWorld, smtp: SmtpServer
) -> None:
    """The DAGs' callback (policywatch.dag_support): Airflow calls it once per failed run, with the
    last task instance and a reason, however many mapped batches failed."""
    from types import SimpleNamespace

    from alerts.notices import FailureNotifier
    from policywatch.dag_support import UnlessDegraded
    from storage.db import ensure_schema

    ensure_schema(world.engine)
    callback = UnlessDegraded(FailureNotifier(["ops@example.org"], settings=settings_from_env))
    batch = SimpleNamespace(dag_id="policywatch_demo", task_id="fetch_and_version", try_number=4, log_url="")
    callback({"ti": batch, "run_id": "scheduled__2026-12-04", "reason": "task_failure"})
    [mail] = smtp.messages
    assert mail.header("Subject") == "[PolicyWatch] policywatch_demo: run failed"
    assert "scheduled__2026-12-04" in mail.part("plain") and "fetch_and_version" in mail.part("plain")
    # A run that ends red on its health check: the source is degraded, which has notices of its own.
    health = SimpleNamespace(dag_id="policywatch_demo", task_id="source_health", try_number=1, log_url="")
    callback({"ti": health, "run_id": "scheduled__2026-12-05", "reason": "task_failure"})
    assert len(smtp.messages) == 1


def test_operator_pages_answer_only_on_loopback_or_behind_the_airflow_login(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from policywatch.web.app import create_app

    json = {"Accept": "application/json"}
    with TestClient(create_app(sqlite_url), client=("203.0.113.9", 5000)) as remote:
        for path in ("/mail", "/mail/1", "/mail/1/html", "/subscribers", "/subscribers/1/digest"):
            assert remote.get(path, headers=json).status_code == 403, path
        assert remote.get("/changes").status_code == 200  # the analysts' pages are as before
    with TestClient(create_app(sqlite_url), client=("127.0.0.1", 5000)) as local_client:
        assert local_client.get("/mail").status_code == 200
        # Through a proxy on the same machine: not a local operator.
        assert (
            local_client.get("/mail", headers={**json, "X-Forwarded-For": "203.0.113.9"}).status_code == 403
        )
    monkeypatch.setenv("POLICYWATCH_OPERATOR_PAGES", "open")
    with TestClient(create_app(sqlite_url), client=("203.0.113.9", 5000)) as remote:
        assert remote.get("/mail").status_code == 200
