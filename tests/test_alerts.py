"""E-mail alerts end to end: a real local site, the real pipeline, a real database (SQLite and
PostgreSQL) and a real SMTP server on 127.0.0.1 (aiosmtpd) whose received mail is parsed back."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts import deliver_pending, send_due_digests, settings_from_env
from alerts.outbox import LEASE, MAX_REJECTIONS, REFUSAL_BACKOFF, message_id_for
from alerts.preferences import next_slot
from policywatch.cli import main
from policywatch.config import parse_config
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.pipeline import CycleSummary
from storage.models import OutboxMessage, Subscriber, utcnow
from tests.support import world as harness
from tests.support.site import LocalSite
from tests.support.smtp import SmtpServer

ROOT = Path(__file__).resolve().parent.parent
TITLE = "江西省人民政府关于印发江西省“十四五”数字经济发展规划的通知"
DOC_NUMBER = "赣府发〔2022〕11号"
ISSUER = "江西省人民政府"
PARAS = corpus_paragraphs("004")[1:41]
FIGURE_INDEX = 7  # "...2020年全省数字经济增加值8354亿元..."
MAIL_FROM = "alerts@policywatch.test"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", server.url)
    monkeypatch.setenv("POLICYWATCH_MAIL_FROM", MAIL_FROM)
    try:
        yield server
    finally:
        server.stop()


# --- the watched sites and the pipeline ------------------------------------------------------------


@dataclass
class AlertWorld(harness.World):
    """Two sources, `demo` (/list/, /content/ documents) and `news` (/news/, reposts under
    /news/a/), and the `subscribers` a test sets (raw YAML items, read again by every cycle).
    Its cycles must have no fetch error."""

    subscribers: str = ""

    clean_cycles = True
    events = harness.World.change_events

    def __post_init__(self) -> None:
        super().__post_init__()
        self.site.put("/list/", "<html><body></body></html>")
        self.site.put("/news/", "<html><body></body></html>")

    def config_text(self) -> str:
        return harness.sources_yaml(
            harness.source_entry(self.site, "demo", "演示站"),
            harness.source_entry(self.site, "news", "新闻转载站", listing="/news/", link_pattern="/news/a/"),
            subscribers=self.subscribers,
            settings={"backoff_base_s": 0.01, "max_attempts": 2, "read_timeout_s": 5},
        )

    @property
    def config_path(self) -> Path:
        """sources.yaml as it is now (with the current subscribers), for the CLI."""
        return self.write_config()

    def cycle(self, *, full: bool = False) -> CycleSummary:
        """A cycle of the config as it is now (with the current subscribers)."""
        self.config = parse_config(self.config_text())
        return super().cycle(full=full)

    def listing(self, *paths: str, listing: str = "/list/") -> None:
        """List `paths` (no titles) on the listing page `listing`."""
        self.put_listing_page(harness.numbered(paths), path=listing)

    def serve(self, path: str = "/content/1.html", **kwargs: Any) -> None:
        """Serve the Jiangxi plan at `path` (`kwargs`: what of it differs, for gov_cn_page)."""
        kwargs.setdefault("title", TITLE)
        kwargs.setdefault("paragraphs", PARAS)
        kwargs.setdefault("doc_number", DOC_NUMBER)
        kwargs.setdefault("issuer", ISSUER)
        kwargs.setdefault("pub_date", "2022-05-25")
        self.site.put(path, gov_cn_page(**kwargs))

    def baseline(self) -> None:
        """Both sources crawled once (their silent baseline), the demo one with the Jiangxi plan."""
        self.listing("/content/1.html")
        self.serve()
        self.listing("/news/a/0.html", listing="/news/")
        self.serve(
            "/news/a/0.html", title="转载站说明", paragraphs=["本站转载各地政策文件。"], doc_number=None
        )
        assert self.cycle().baseline == 2

    def change_figure(self, old: str = "8354", new: str = "8355") -> None:
        """Change one figure of the plan (8354 to 8355 unless told)."""
        paras = list(PARAS)
        paras[FIGURE_INDEX] = paras[FIGURE_INDEX].replace(old, new, 1)
        self.serve(paragraphs=paras)

    @property
    def store_id(self) -> str:
        """The store's identity (`alerts.identity`), which its Message-IDs carry."""
        from alerts.identity import store_identity

        return store_identity(self.sessions).store_id

    def outbox(self) -> list[OutboxMessage]:
        """Every outbox message, oldest first."""
        with self.sessions() as s:
            return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def subscriber(email_address: str, **options: Any) -> str:
    lines = [f"  - email: {email_address}"]
    for key, value in options.items():
        if isinstance(value, list | tuple):
            value = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        elif isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"    {key}: {value}")
    return "\n".join(lines)


@pytest.fixture
def world(
    site: LocalSite, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AlertWorld]:
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)  # for the commands the tests run
    with AlertWorld(site, db_url, tmp_path) as w:
        yield w


# --- immediate alerts ------------------------------------------------------------------------------


def test_changed_document_alerts_each_matching_subscriber_once(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("all@example.org"),
            subscriber("figures@example.org", keywords=["数字经济增加值"]),
            subscriber("news-only@example.org", sources=["news"]),
            subscriber("new-only@example.org", events=["new"]),
        ]
    )
    world.baseline()
    world.change_figure()
    summary = world.cycle()
    assert (summary.changed, summary.alerts_sent, summary.alerts_pending) == (1, 2, 0)
    [event] = world.events()
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == ["all@example.org", "figures@example.org"]

    [mail] = smtp.sink.to("all@example.org")
    assert mail.mail_from == MAIL_FROM
    msg = mail.message
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["X-Policywatch-Event"] == "changed"
    assert msg["X-Policywatch-Change-Id"] == str(event.id)
    assert msg["X-Policywatch-Source"] == "demo"
    assert msg["Message-ID"] == message_id_for(
        "all@example.org", [event.id], "policywatch.test", world.store_id
    )
    assert TITLE in msg["Subject"]
    assert b"=?utf-8?" in mail.raw.split(b"\r\n\r\n", 1)[0].lower()  # RFC 2047 encoded on the wire

    text, html = mail.part("plain"), mail.part("html")
    for body in (text, html):
        assert ISSUER in body and DOC_NUMBER in body and "2022-05-25" in body
        assert world.site.url("/content/1.html") in body
    assert "[-8354-]{+8355+}" in text
    assert re.search(
        r'<del [^>]*style="[^"]*line-through[^"]*">8354</del><ins [^>]*style="[^"]*">8355</ins>', html
    )
    assert f'href="{world.site.url("/content/1.html")}"' in html
    assert "unchanged sentence" in html  # the 39 untouched paragraphs are folded, not repeated
    assert PARAS[30][:20] not in html
    for part in msg.get_body(preferencelist=("plain",)), msg.get_body(preferencelist=("html",)):
        assert part.get_content_charset() == "utf-8"

    [other] = smtp.sink.to("figures@example.org")
    assert other.message["Message-ID"] != msg["Message-ID"]
    assert [row.status for row in world.outbox()] == ["sent", "sent"]


def test_keywords_match_the_changed_text_only(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("in-change@example.org", keywords=["数字经济增加值", "区块链"]),
            subscriber("in-unchanged@example.org", keywords=["远景目标纲要"]),  # only in paragraph 5
            subscriber("latin@example.org", keywords=["gdp"]),  # "GDP" is in the changed sentence
        ]
    )
    assert "远景目标纲要" in PARAS[5] and "远景目标纲要" not in PARAS[FIGURE_INDEX]
    world.baseline()
    world.change_figure()
    world.cycle()
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["in-change@example.org", "latin@example.org"]


def test_keyword_in_a_deleted_sentence_matches(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = subscriber("watcher@example.org", keywords=["远景目标纲要"])
    world.baseline()
    world.serve(paragraphs=PARAS[:5] + PARAS[6:])  # paragraph 5, which names the 纲要, is dropped
    assert world.cycle().changed == 1
    [mail] = smtp.messages
    assert "远景目标纲要" in mail.part("plain")


def test_sources_filter(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("demo@example.org", sources=["demo"]),
            subscriber("news@example.org", sources=["news"]),
            subscriber("both@example.org", sources=["*"]),
        ]
    )
    world.listing("/content/1.html")
    world.listing("/news/a/1.html", listing="/news/")
    world.serve()
    world.serve(
        "/news/a/1.html", title="国务院关于印发“十四五”数字经济发展规划的通知", doc_number="国发〔2021〕29号"
    )
    world.cycle()
    world.serve(
        "/news/a/1.html",
        title="国务院关于印发“十四五”数字经济发展规划的通知",
        doc_number="国发〔2021〕29号",
        paragraphs=[p.replace("8354", "9000") for p in PARAS],
    )
    assert world.cycle().changed == 1
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["both@example.org", "news@example.org"]
    assert {m.header("X-Policywatch-Source") for m in smtp.messages} == {"news"}


def test_new_documents_alert_only_when_relevant_and_reposts_never_as_new(
    world: AlertWorld, smtp: SmtpServer
) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("analyst@example.org", events=["new", "changed"]),
            subscriber("reposts@example.org", events=["republished"]),
        ]
    )
    world.baseline()
    world.listing("/content/1.html", "/content/2.html", "/content/3.html")
    world.listing("/news/a/9.html", listing="/news/")
    fire = [
        "各地要做好春季森林防火工作,加强巡山护林,严防山火发生。",
        "各级林业部门要落实值班制度,确保信息畅通。",
    ]
    world.serve(
        "/content/2.html",
        title="关于做好春季森林防火工作的通知",
        paragraphs=fire,
        doc_number="赣林发〔2024〕1号",
    )
    data_title = "国家数据局关于开展公共数据资源开发利用试点的通知"
    data_paras = corpus_paragraphs("000")[:12]
    world.serve("/content/3.html", title=data_title, paragraphs=data_paras, doc_number="国数发〔2024〕3号")
    # The same policy text reposted on another site: a repost, not a new policy.
    world.serve("/news/a/9.html", title=data_title, paragraphs=data_paras, doc_number="国数发〔2024〕3号")
    summary = world.cycle()
    assert summary.new == 2 and summary.republished == 1
    by_title = {e.title: e for e in world.events("new")}
    assert by_title["关于做好春季森林防火工作的通知"].relevant is False
    assert by_title[data_title].relevant is True

    [new_mail] = smtp.sink.to("analyst@example.org")
    assert new_mail.header("X-Policywatch-Event") == "new"
    assert new_mail.header("X-Policywatch-Change-Id") == str(by_title[data_title].id)
    assert data_title in new_mail.header("Subject")
    assert data_paras[1][:15] in new_mail.part("plain")  # the new document's opening text
    [repost_mail] = smtp.sink.to("reposts@example.org")
    assert repost_mail.header("X-Policywatch-Event") == "republished"
    assert world.site.url("/content/3.html") in repost_mail.part("html")  # points at the original
    assert len(smtp.messages) == 2


def test_removed_document_alert(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = subscriber("analyst@example.org")
    world.baseline()
    world.site.remove("/content/1.html")
    assert world.cycle().removed == 1
    [mail] = smtp.messages
    assert mail.header("X-Policywatch-Event") == "removed" and TITLE in mail.header("Subject")


# --- exactly once ----------------------------------------------------------------------------------


def test_the_same_cycle_twice_sends_nothing_twice(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = subscriber("analyst@example.org")
    world.baseline()
    world.change_figure()
    assert world.cycle().alerts_sent == 1
    again = world.cycle()
    assert (again.changed, again.alerts_sent, again.alerts_pending) == (0, 0, 0)
    assert deliver_pending(world.engine, settings_from_env()).messages_sent == 0
    assert len(smtp.messages) == 1


def test_smtp_down_then_up_every_alert_arrives_exactly_once(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = "\n".join([subscriber("a@example.org"), subscriber("b@example.org")])
    world.baseline()
    smtp.stop()
    world.change_figure()
    down = world.cycle()
    assert (down.changed, down.alerts_sent, down.alerts_pending) == (1, 0, 2)
    rows = world.outbox()
    assert [r.status for r in rows] == ["pending", "pending"]
    assert all(r.attempts == 1 and "unavailable" in (r.last_error or "") for r in rows)
    # Still down for a second change: the first alerts stay pending, new ones join them.
    world.change_figure("8354", "8356")
    assert world.cycle().alerts_pending == 4
    assert [r.attempts for r in world.outbox()] == [2, 2, 1, 1]

    smtp.start()
    up = world.cycle()
    assert (up.changed, up.alerts_sent, up.alerts_pending) == (0, 4, 0)
    assert len(smtp.messages) == 4
    assert len({m.header("Message-ID") for m in smtp.messages}) == 4
    assert sorted((m.rcpt_tos[0], m.header("X-Policywatch-Change-Id")) for m in smtp.messages) == sorted(
        (address, str(e.id)) for e in world.events() for address in ("a@example.org", "b@example.org")
    )
    world.cycle()
    assert deliver_pending(world.engine, settings_from_env()).messages_sent == 0
    assert len(smtp.messages) == 4


def test_refused_message_stays_pending_and_goes_once_accepted(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = subscriber("analyst@example.org")
    world.baseline()
    smtp.sink.mode = "tempfail"
    world.change_figure()
    assert world.cycle().alerts_pending == 1
    [row] = world.outbox()
    assert row.status == "pending" and row.attempts == 1 and "451" in (row.last_error or "")
    smtp.sink.mode = "close"  # 421: the server is going away
    report = deliver_pending(world.engine, settings_from_env())
    assert report.error and report.pending == 1 and smtp.messages == []
    smtp.sink.mode = "accept"
    report = deliver_pending(world.engine, settings_from_env())
    assert (report.messages_sent, report.pending, report.error) == (1, 0, None)
    assert deliver_pending(world.engine, settings_from_env()).messages_sent == 0
    assert len(smtp.messages) == 1


def test_a_refused_message_is_retried_for_hours_then_given_up(world: AlertWorld, smtp: SmtpServer) -> None:
    """A 5xx refusal (a full mailbox, a receiving server's temporary block) counts against the message,
    which waits before each next try (REFUSAL_BACKOFF) instead of being given up within a minute."""
    world.subscribers = subscriber("nobody@example.org")
    world.baseline()
    smtp.sink.mode = "reject"
    world.change_figure()
    world.cycle()  # the cycle's own delivery: the first refusal
    settings = settings_from_env()
    [row] = world.outbox()
    assert (row.status, row.rejections) == ("pending", 1) and row.retry_at is not None
    first_try = row.retry_at - REFUSAL_BACKOFF[0]
    # Delivery passes before the wait is over do not try it (and do not count).
    assert deliver_pending(world.engine, settings).failed == 0
    assert world.outbox()[0].rejections == 1
    at = first_try
    for n, wait in enumerate(REFUSAL_BACKOFF[1:], start=2):
        at += REFUSAL_BACKOFF[n - 2] + timedelta(seconds=1)
        report = deliver_pending(world.engine, settings, now=at)
        [row] = world.outbox()
        assert (row.status, row.rejections, report.failed) == ("pending", n, 0), n
        assert abs((row.retry_at - at) - wait) < timedelta(seconds=1)
    at += REFUSAL_BACKOFF[-1] + timedelta(seconds=1)
    report = deliver_pending(world.engine, settings, now=at)
    assert report.failed == 1 and report.pending == 0
    [row] = world.outbox()
    assert row.status == "failed" and row.rejections == MAX_REJECTIONS and "554" in (row.last_error or "")
    assert at - first_try > timedelta(hours=12)  # retried for hours, not within a minute
    assert smtp.messages == []


def test_a_refused_message_goes_out_when_the_server_takes_it_again(
    world: AlertWorld, smtp: SmtpServer
) -> None:
    world.subscribers = subscriber("analyst@example.org")
    world.baseline()
    smtp.sink.mode = "reject"
    world.change_figure()
    world.cycle()
    smtp.sink.mode = "accept"
    settings = settings_from_env()
    assert deliver_pending(world.engine, settings).messages_sent == 0  # waiting for its next try
    later = utcnow() + REFUSAL_BACKOFF[0] + timedelta(seconds=1)
    assert deliver_pending(world.engine, settings, now=later).messages_sent == 1
    [row] = world.outbox()
    assert row.status == "sent" and row.rejections == 1
    assert len(smtp.messages) == 1


def test_alerts_pending_past_the_alarm_turn_the_deliver_task_red(
    world: AlertWorld, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policywatch import tasks

    world.subscribers = subscriber("analyst@example.org")
    world.baseline()
    smtp.sink.mode = "reject"
    world.change_figure()
    world.cycle()
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", world.url)
    assert tasks.stale_alerts(str(world.config_path)) is None  # just queued
    hours_later = utcnow() + timedelta(hours=7)
    alarm = tasks.stale_alerts(str(world.config_path), now=hours_later)
    assert alarm is not None and "pending for 7." in alarm and "554" in alarm
    monkeypatch.setenv("POLICYWATCH_ALERT_PENDING_ALARM_HOURS", "8")
    assert tasks.stale_alerts(str(world.config_path), now=hours_later) is None


def test_crash_after_smtp_acceptance_resends_with_the_same_message_id(
    world: AlertWorld, smtp: SmtpServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.subscribers = subscriber("analyst@example.org")
    world.baseline()
    world.change_figure()
    monkeypatch.delenv("POLICYWATCH_SMTP_URL")
    assert world.cycle().alerts_pending == 1
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", smtp.url)

    run_killed_on_acceptance(world, smtp, db_url, "deliver")
    [first] = smtp.messages
    [row] = world.outbox()
    assert row.status == "sending" and row.message_id == first.header("Message-ID")

    settings = settings_from_env()
    # While the dead deliverer's lease holds, nobody sends the row.
    assert deliver_pending(world.engine, settings).messages_sent == 0
    # Once it expired, the next deliverer resends it: same Message-ID, so the duplicate is recognisable.
    later = utcnow() + LEASE + timedelta(seconds=1)
    assert deliver_pending(world.engine, settings, now=later).messages_sent == 1
    second = smtp.messages[1]
    assert second.header("Message-ID") == first.header("Message-ID")
    assert second.header("X-Policywatch-Change-Id") == first.header("X-Policywatch-Change-Id")
    [row] = world.outbox()
    assert row.status == "sent"
    assert deliver_pending(world.engine, settings, now=later).messages_sent == 0
    assert len(smtp.messages) == 2


def run_killed_on_acceptance(world: AlertWorld, smtp: SmtpServer, db_url: str, *command: str) -> None:
    """A real `policywatch COMMAND` process, killed (SIGKILL) the moment the server has the message:
    it never learns of the acceptance and never commits "sent"."""
    env = {**os.environ, "POLICYWATCH_DATABASE_URL": db_url, "POLICYWATCH_CONFIG": str(world.config_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "policywatch.cli", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    smtp.sink.on_accept = lambda: os.kill(process.pid, signal.SIGKILL)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        smtp.sink.on_accept = None
    assert process.returncode == -signal.SIGKILL, stderr.decode(errors="replace")


def test_crash_after_digest_acceptance_resends_the_same_digest(
    world: AlertWorld, smtp: SmtpServer, db_url: str
) -> None:
    world.subscribers = subscriber("daily@example.org", digest=True)
    world.baseline()
    world.change_figure()
    world.cycle()
    run_killed_on_acceptance(world, smtp, db_url, "digest", "--force")
    [first] = smtp.messages
    assert {r.status for r in world.outbox()} == {"sending"}
    # Another change arrives before the resend: it must not change the crashed digest.
    world.change_figure("8354", "8356")
    world.cycle()
    later = utcnow() + LEASE + timedelta(seconds=1)
    report = send_due_digests(world.engine, settings_from_env(), now=later, force=True)
    assert report.messages_sent == 2
    resent, fresh = smtp.messages[1:]
    assert resent.header("Message-ID") == first.header("Message-ID")
    assert resent.header("X-Policywatch-Change-Id") == first.header("X-Policywatch-Change-Id")
    assert fresh.header("Message-ID") != first.header("Message-ID")
    assert {r.status for r in world.outbox()} == {"sent"}


def test_concurrent_deliverers_never_send_one_alert_twice(
    world: AlertWorld, smtp: SmtpServer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    addresses = [f"reader{i}@example.org" for i in range(8)]
    world.subscribers = "\n".join(subscriber(a) for a in addresses)
    world.baseline()
    world.change_figure()
    monkeypatch.delenv("POLICYWATCH_SMTP_URL")
    assert world.cycle().alerts_pending == 8
    settings = smtp_settings(smtp)
    smtp.sink.delay_s = 0.02  # keeps both deliverers busy at the same time
    start = threading.Barrier(3)
    reports = []

    def deliverer() -> None:
        start.wait()
        reports.append(deliver_pending(world.engine, settings))

    threads = [threading.Thread(target=deliverer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(r.messages_sent for r in reports) == 8
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == sorted(addresses)
    assert {r.status for r in world.outbox()} == {"sent"}


def smtp_settings(server: SmtpServer):  # type: ignore[no-untyped-def]
    from alerts import parse_smtp_url

    return parse_smtp_url(server.url, mail_from=MAIL_FROM)


# --- digests ---------------------------------------------------------------------------------------


def test_daily_digest_groups_by_source_and_collapses_reposts(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("daily@example.org", digest=True, events=["new", "changed", "republished"]),
            subscriber("now@example.org", events=["changed"]),
        ]
    )
    world.baseline()
    data_title = "国家数据局关于开展公共数据资源开发利用试点的通知"
    data_paras = corpus_paragraphs("000")[:12]
    world.change_figure()
    world.listing("/content/1.html", "/content/3.html")
    world.listing("/news/a/9.html", listing="/news/")
    world.serve("/content/3.html", title=data_title, paragraphs=data_paras, doc_number="国数发〔2024〕3号")
    world.serve("/news/a/9.html", title=data_title, paragraphs=data_paras, doc_number="国数发〔2024〕3号")
    summary = world.cycle()
    assert (summary.changed, summary.new, summary.republished) == (1, 1, 1)
    # The immediate subscriber has its alert; the digest waits for `digest`.
    assert [m.rcpt_tos for m in smtp.messages] == [["now@example.org"]]
    assert summary.alerts_pending == 0

    settings = settings_from_env()
    # The digest goes out at 08:00 Beijing time (the default hour): the first one after the alerts.
    t0 = next_slot(utcnow())
    assert send_due_digests(world.engine, settings, now=t0 - timedelta(minutes=1)).messages_sent == 0
    report = send_due_digests(world.engine, settings, now=t0)
    assert (report.messages_sent, report.alerts_sent, report.pending) == (1, 3, 0)
    [digest] = smtp.sink.to("daily@example.org")
    events = world.events()
    assert digest.header("X-Policywatch-Event") == "digest"
    assert digest.header("X-Policywatch-Change-Id") == ", ".join(str(e.id) for e in events)
    assert digest.header("X-Policywatch-Source") == "demo, news"
    assert digest.header("Message-ID") == message_id_for(
        "daily@example.org", [e.id for e in events], "policywatch.test", world.store_id
    )
    text, html = digest.part("plain"), digest.part("html")
    # One group per source that has an entry; the repost is folded into the original's entry.
    assert text.count("== 演示站 (demo) ==") == 1 and "== 新闻转载站" not in text
    assert text.count(f"* {data_title}") == 1 and text.count(f"* {TITLE}") == 1
    assert f"also at: 新闻转载站: {world.site.url('/news/a/9.html')}" in text
    assert "[-8354-]{+8355+}" in text
    assert html.count(">" + data_title + "<") == 1
    assert "也见于" in html and world.site.url("/news/a/9.html") in html
    assert re.search(r"<del [^>]*>8354</del><ins [^>]*>8355</ins>", html)

    # Sent: the same digest is never sent again.
    assert send_due_digests(world.engine, settings, now=t0).messages_sent == 0
    # A new change an hour later waits for the next day's digest ...
    world.change_figure("8354", "8356")
    world.cycle()
    assert send_due_digests(world.engine, settings, now=t0 + timedelta(hours=1)).messages_sent == 0
    # ... which the `digest` command sends when it is due.
    config = str(world.config_path)
    tomorrow = (t0 + timedelta(hours=24)).isoformat()
    assert main(["--config", config, "digest", "--now", tomorrow]) == 0
    assert len(smtp.sink.to("daily@example.org")) == 2
    assert main(["--config", config, "digest", "--now", tomorrow]) == 0
    assert len(smtp.sink.to("daily@example.org")) == 2


def test_digest_force_sends_before_it_is_due(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = subscriber("daily@example.org", digest=True)
    world.baseline()
    world.change_figure()
    world.cycle()
    settings = settings_from_env()
    # Queued just now: due at the next 08:00 Beijing time, not before ...
    assert send_due_digests(world.engine, settings).messages_sent == 0
    # ... unless forced.
    assert main(["--config", str(world.config_path), "digest", "--force"]) == 0
    assert len(smtp.messages) == 1
    world.change_figure("8354", "8356")
    world.cycle()
    assert send_due_digests(world.engine, settings).messages_sent == 0
    assert main(["--config", str(world.config_path), "digest", "--force"]) == 0
    assert len(smtp.messages) == 2


def test_digests_survive_a_server_going_away_and_a_refusal_as_alerts_do(
    world: AlertWorld, smtp: SmtpServer
) -> None:
    """Digests go through the alerts' send loop (alerts.sending): a server that goes away mid-pass
    leaves every digest pending and unmarked, a refused one waits for its next try, none goes twice."""
    world.subscribers = "\n".join(
        [subscriber("one@example.org", digest=True), subscriber("two@example.org", digest=True)]
    )
    world.baseline()
    world.change_figure()
    world.cycle()
    settings = settings_from_env()
    smtp.sink.mode = "close"  # 421 on the first digest: the server is going away
    report = send_due_digests(world.engine, settings, force=True)
    assert (report.messages_sent, report.pending) == (0, 2) and "unavailable" in (report.error or "")
    assert [r.status for r in world.outbox()] == ["pending", "pending"]
    with world.sessions() as s:
        assert [sub.last_digest_at for sub in s.scalars(select(Subscriber))] == [None, None]

    smtp.sink.mode = "reject"
    report = send_due_digests(world.engine, settings, force=True)
    assert (report.messages_sent, report.failed, report.pending, report.error) == (0, 0, 2, None)
    assert [(r.status, r.rejections) for r in world.outbox()] == [("pending", 1), ("pending", 1)]
    smtp.sink.mode = "accept"
    assert send_due_digests(world.engine, settings, force=True).messages_sent == 0  # waiting
    later = utcnow() + REFUSAL_BACKOFF[0] + timedelta(seconds=1)
    report = send_due_digests(world.engine, settings, now=later, force=True)
    assert (report.messages_sent, report.alerts_sent, report.pending) == (2, 2, 0)
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["one@example.org", "two@example.org"]
    assert send_due_digests(world.engine, settings, now=later, force=True).messages_sent == 0
    assert len(smtp.messages) == 2


def test_an_alert_that_fails_to_render_holds_back_no_other(
    world: AlertWorld, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alerts.render

    world.subscribers = "\n".join([subscriber("a@example.org"), subscriber("b@example.org")])
    world.baseline()
    world.change_figure()
    monkeypatch.delenv("POLICYWATCH_SMTP_URL")
    assert world.cycle().alerts_pending == 2
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", smtp.url)
    real = alerts.render.alert_message

    def broken_for_a(view: Any, recipient: str, *args: Any) -> Any:
        if recipient == "a@example.org":
            raise RuntimeError("template bug")
        return real(view, recipient, *args)

    monkeypatch.setattr(alerts.render, "alert_message", broken_for_a)
    report = deliver_pending(world.engine, settings_from_env())
    assert (report.messages_sent, report.pending, report.error) == (1, 1, None)
    assert [m.rcpt_tos[0] for m in smtp.messages] == ["b@example.org"]
    rows = {r.subscriber_id: r for r in world.outbox()}
    assert sorted((r.status, (r.last_error or "")[:17]) for r in rows.values()) == [
        ("pending", "rendering failed:"),
        ("sent", ""),
    ]
    monkeypatch.setattr(alerts.render, "alert_message", real)
    assert deliver_pending(world.engine, settings_from_env()).messages_sent == 1
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["a@example.org", "b@example.org"]


# --- untrusted page text ---------------------------------------------------------------------------


def test_title_with_header_injection_and_body_with_script_arrive_harmless(
    world: AlertWorld, smtp: SmtpServer
) -> None:
    world.subscribers = subscriber("analyst@example.org")
    world.baseline()
    evil_title = TITLE + "\r\nBcc: x@y"
    script = "<script>alert('数字经济')</script><img src=x onerror=alert(1)>"
    world.serve(title=evil_title, paragraphs=[*PARAS[:3], script + "数据要素市场化配置改革。", *PARAS[3:]])
    assert world.cycle().changed == 1
    [mail] = smtp.messages
    assert mail.rcpt_tos == ["analyst@example.org"]
    head = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^bcc:", head)
    assert "Bcc" not in mail.message and "x@y" not in str(mail.message["To"])
    assert "\r" not in mail.header("Subject") and "\n" not in mail.header("Subject")
    assert "Bcc: x@y" in mail.header("Subject")  # shown as text, harmless
    html = mail.part("html")
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;" in html
    assert "<script>" in mail.part("plain")  # plain text shows it as the text it is


# --- command line and subscriptions ------------------------------------------------------------------


def test_run_says_alerts_stay_pending_without_smtp_and_deliver_sends_them(
    world: AlertWorld, smtp: SmtpServer, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    world.subscribers = subscriber("analyst@example.org")
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    config = str(world.config_path)
    world.baseline()
    world.change_figure()
    monkeypatch.delenv("POLICYWATCH_SMTP_URL")
    capsys.readouterr()
    assert main(["--config", config, "run"]) == 0
    out = capsys.readouterr().out
    assert "alerts: 1 pending: POLICYWATCH_SMTP_URL is not set" in out
    assert main(["--config", config, "deliver"]) == 1
    assert "POLICYWATCH_SMTP_URL is not set" in capsys.readouterr().err

    monkeypatch.setenv("POLICYWATCH_SMTP_URL", smtp.url)
    smtp.stop()
    assert main(["--config", config, "deliver"]) == 1
    assert "unavailable" in capsys.readouterr().err
    smtp.start()
    assert main(["--config", config, "deliver"]) == 0
    assert "1 message(s) sent (1 alert(s)), 0 alert(s) pending" in capsys.readouterr().out
    assert main(["--config", config, "deliver", "--json"]) == 0
    assert '"messages_sent": 0' in capsys.readouterr().out
    assert len(smtp.messages) == 1

    monkeypatch.setenv("POLICYWATCH_SMTP_URL", "smtp://127.0.0.1:notaport")
    assert main(["--config", config, "run"]) == 2


def test_config_edits_keep_the_history_of_what_was_sent(world: AlertWorld, smtp: SmtpServer) -> None:
    world.subscribers = "\n".join([subscriber("a@example.org"), subscriber("b@example.org")])
    world.baseline()
    world.change_figure()
    world.cycle()
    assert len(smtp.messages) == 2
    # Reordered, with new filters: the same subscribers (by address), nothing sent again.
    world.subscribers = "\n".join(
        [subscriber("B@example.org", keywords=["数字经济"]), subscriber("a@example.org", events=["changed"])]
    )
    world.cycle()
    assert len(smtp.messages) == 2
    with world.sessions() as s:
        assert sorted(sub.email for sub in s.scalars(select(Subscriber))) == [
            "a@example.org",
            "b@example.org",
        ]
    # b leaves while the server is down: its pending alert is cancelled, a's is delivered later.
    smtp.stop()
    world.change_figure("8354", "8356")
    world.cycle()
    world.subscribers = subscriber("a@example.org")
    smtp.start()
    summary = world.cycle()
    assert (summary.alerts_sent, summary.alerts_pending) == (1, 0)
    assert [m.rcpt_tos[0] for m in smtp.messages[2:]] == ["a@example.org"]
    assert sorted(r.status for r in world.outbox()) == ["cancelled", "sent", "sent", "sent"]
