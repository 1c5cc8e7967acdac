"""Triage marks: stored with who and when (an audit trail), shown and filtered on the pages, the API
and the exports, protected against cross-site posts, and `important` alerts sent once through the
real delivery path to a real SMTP server."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from alerts import deliver_pending, settings_from_env
from alerts.marks import MarkError, NoSuchChange, mark_change, mark_history
from alerts.subscriptions import sync_subscriptions
from policywatch.config import SubscriberConfig
from policywatch.web.app import create_app
from storage.db import make_engine, session_factory, unit_of_work
from storage.models import ChangeEvent, ChangeMark, OutboxMessage
from tests.support.site import LocalSite
from tests.support.smtp import SmtpServer
from tests.test_web_support import WebWorld, build_world


@pytest.fixture
def world(site: LocalSite, db_url: str) -> Iterator[WebWorld]:
    yield build_world(site, db_url)


@pytest.fixture
def client(world: WebWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("POLICYWATCH_WEB_USER", "alice")
    engine = make_engine(world.url)
    try:
        with TestClient(create_app(engine), follow_redirects=False) as test_client:
            yield test_client
    finally:
        engine.dispose()


def _changed_event(url: str) -> int:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            event_id = session.scalar(select(ChangeEvent.id).where(ChangeEvent.kind == "changed").limit(1))
    finally:
        engine.dispose()
    assert event_id is not None
    return event_id


def _token(client: TestClient, page: str = "/changes") -> str:
    found = re.search(r'name="token" value="([0-9a-f]+)"', client.get(page).text)
    assert found, "the page has no mark form"
    return found.group(1)


def test_marks_keep_an_audit_trail_and_the_newest_is_current(world: WebWorld) -> None:
    event_id = _changed_event(world.url)
    engine = make_engine(world.url)
    try:
        factory = session_factory(engine)
        with unit_of_work(factory) as session:
            mark_change(session, event_id, "reviewed", "figures checked", "alice")
        with unit_of_work(factory) as session:
            mark_change(session, event_id, "important", "涉及数据要素的新指标", "bob")
        with factory() as session:
            assert session.get(ChangeEvent, event_id).mark == "important"  # type: ignore[union-attr]
            history = [(m.mark, m.user, m.note) for m in mark_history(session, event_id)]
            assert history == [
                ("reviewed", "alice", "figures checked"),
                ("important", "bob", "涉及数据要素的新指标"),
            ]
        with unit_of_work(factory) as session:
            mark_change(session, event_id, "cleared", "", "carol")
        with factory() as session:
            assert session.get(ChangeEvent, event_id).mark is None  # type: ignore[union-attr]
            assert session.scalar(select(ChangeMark).where(ChangeMark.user == "alice")) is not None
            assert len(mark_history(session, event_id)) == 3  # nothing is overwritten
        for bad in (
            lambda s: mark_change(s, event_id, "urgent", "", "alice"),
            lambda s: mark_change(s, event_id, "reviewed", "x" * 2001, "alice"),
            lambda s: mark_change(s, event_id, "reviewed", "bell\x07", "alice"),
            lambda s: mark_change(s, event_id, "reviewed", "", " "),
        ):
            with pytest.raises(MarkError), unit_of_work(factory) as session:
                bad(session)
        with pytest.raises(NoSuchChange), unit_of_work(factory) as session:
            mark_change(session, 10**9, "reviewed", "", "alice")
        with factory() as session:
            assert len(mark_history(session, event_id)) == 3  # the refused marks left nothing behind
    finally:
        engine.dispose()


def test_a_change_marked_on_the_page_is_filtered_exported_and_in_the_api(
    client: TestClient, world: WebWorld
) -> None:
    event_id = _changed_event(world.url)
    total = len(client.get("/api/changes", params={"per_page": 200}).json()["items"])
    answer = client.post(
        f"/changes/{event_id}/mark",
        data={
            "mark": "important",
            "note": "新增数据要素指标",
            "token": _token(client),
            "next": "/changes?kind=changed",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/changes?kind=changed#change-{event_id}"

    important = client.get("/changes", params={"mark": "important"}).text
    assert important.count('class="change"') == 1 and f'id="change-{event_id}"' in important
    unreviewed = client.get("/changes", params={"mark": "unreviewed", "per_page": 200}).text
    assert unreviewed.count('class="change"') == total - 1 and f'id="change-{event_id}"' not in unreviewed
    # The pager and export links keep the filter.
    assert "/export/changes.csv?mark=important" in important

    items = client.get("/api/changes", params={"mark": "important"}).json()["items"]
    assert [(c["id"], c["mark"]) for c in items] == [(event_id, "important")]
    assert all(
        c["mark"] is None for c in client.get("/api/changes", params={"mark": "unreviewed"}).json()["items"]
    )
    audit = client.get(f"/api/changes/{event_id}/marks").json()
    assert [(m["mark"], m["user"], m["note"]) for m in audit] == [("important", "alice", "新增数据要素指标")]

    rows = list(csv.DictReader(io.StringIO(client.get("/export/changes.csv").text.lstrip("\ufeff"))))
    marked = [r for r in rows if r["mark"]]
    assert [(int(r["id"]), r["mark"], r["mark_note"], r["marked_by"]) for r in marked] == [
        (event_id, "important", "新增数据要素指标", "alice")
    ]
    exported = json.loads(client.get("/export/changes.json", params={"mark": "important"}).text)
    assert [(e["id"], e["marked_by"]) for e in exported] == [(event_id, "alice")]

    # The diff page shows the mark and its history; the document page the badge.
    change = client.get("/api/changes?mark=important").json()["items"][0]
    diff = client.get(f"/diff/{change['old_version_id']}/{change['new_version_id']}").text
    assert "marks-history" in diff and "新增数据要素指标" in diff and "alice" in diff
    document = client.get(f"/documents/{change['document_id']}").text
    assert 'class="mark mark-important"' in document


def test_writes_need_the_form_token_or_a_json_api_call(client: TestClient, world: WebWorld) -> None:
    event_id = _changed_event(world.url)
    form = {"mark": "reviewed", "note": "", "next": "/changes"}
    assert client.post(f"/changes/{event_id}/mark", data=form).status_code == 403
    assert client.post(f"/changes/{event_id}/mark", data={**form, "token": "0" * 32}).status_code == 403
    # Another site's form cannot send JSON here (no CORS): the API takes JSON only.
    assert client.post(f"/api/changes/{event_id}/marks", data={"mark": "reviewed"}).status_code == 415
    answer = client.post(f"/api/changes/{event_id}/marks", json={"mark": "not_significant", "note": "排版"})
    assert answer.status_code == 201 and answer.json()["user"] == "alice"
    assert client.post(f"/api/changes/{event_id}/marks", json={"mark": "urgent"}).status_code == 400
    assert client.post("/api/changes/999999999/marks", json={"mark": "reviewed"}).status_code == 404
    # `next` never leads off the app.
    token = _token(client)
    away = client.post(f"/changes/{event_id}/mark", data={**form, "token": token, "next": "//evil.example/x"})
    assert away.headers["location"].startswith("/changes#")
    engine = make_engine(world.url)
    try:
        with session_factory(engine)() as session:
            marks = [(m.mark, m.user) for m in mark_history(session, event_id)]
    finally:
        engine.dispose()
    assert marks == [("not_significant", "alice"), ("reviewed", "alice")]


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    monkeypatch.setenv("POLICYWATCH_SMTP_URL", server.url)
    monkeypatch.setenv("POLICYWATCH_MAIL_FROM", "alerts@policywatch.test")
    try:
        yield server
    finally:
        server.stop()


def test_an_important_mark_alerts_the_subscribers_who_asked_once(world: WebWorld, smtp: SmtpServer) -> None:
    engine = make_engine(world.url)
    try:
        factory = session_factory(engine)
        sync_subscriptions(
            factory,
            [
                SubscriberConfig(email="lead@example.org", events=("important",)),
                SubscriberConfig(email="news-only@example.org", sources=("news",), events=("important",)),
                SubscriberConfig(email="changes@example.org", events=("changed",)),
            ],
        )
        event_id = _changed_event(world.url)
        for mark, note, user in [
            ("important", "请分管领导阅", "alice"),
            ("cleared", "", "bob"),
            ("important", "再次标记", "carol"),
        ]:
            with unit_of_work(factory) as session:
                mark_change(session, event_id, mark, note, user)
        with factory() as session:
            rows = session.execute(
                select(OutboxMessage.subscriber_id, OutboxMessage.reason).where(
                    OutboxMessage.event_id == event_id
                )
            ).all()
        assert [reason for _, reason in rows] == ["important"]  # the gov change: not news-only's source
        report = deliver_pending(engine, settings_from_env())
        assert report.messages_sent == 1
        [received] = smtp.messages
        assert received.rcpt_tos == ["lead@example.org"]
        assert "重要" in received.header("Subject")
        assert received.header("X-Policywatch-Mark") == "important"
        assert f"important-{event_id}" in received.header("Message-ID")
        text = received.part("plain")
        assert "carol" in text and "再次标记" in text  # the newest important mark speaks
        assert deliver_pending(engine, settings_from_env()).messages_sent == 0
    finally:
        engine.dispose()


def test_subscribers_choose_important_and_follows_on_their_preferences_page(
    client: TestClient, world: WebWorld
) -> None:
    from alerts import preferences as prefs
    from alerts.identity import make_token, store_identity
    from storage.models import Subscriber

    engine = make_engine(world.url)
    try:
        factory = session_factory(engine)
        sync_subscriptions(factory, [SubscriberConfig(email="analyst@example.org")])
        with factory() as session:
            sid = session.scalar(select(Subscriber.id).where(Subscriber.email == "analyst@example.org"))
        token = make_token(store_identity(factory), sid)
        page = client.get(f"/preferences/{token}").text
        assert 'value="important"' in page and 'name="follows"' in page
        answer = client.post(
            f"/preferences/{token}",
            data={
                "action": "save",
                "sources": "*",
                "events": ["new", "important"],
                "mode": "immediate",
                "digest_hour": "8",
                "digest_timezone": "Asia/Shanghai",
                "follows": "国发〔2021〕29号\n《“十四五”数字经济发展规划》",
            },
        )
        assert answer.status_code == 200, answer.text
        with factory() as session:
            current = prefs.load(session, sid)
        assert current is not None
        assert current.rule.events == ("new", "important")
        assert current.rule.follows == ("国发〔2021〕29号", "《“十四五”数字经济发展规划》")
        # The page shows what was saved.
        assert "国发〔2021〕29号" in client.get(f"/preferences/{token}").text
    finally:
        engine.dispose()


def test_cli_lists_changes_by_mark(
    world: WebWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from policywatch.cli import main

    event_id = _changed_event(world.url)
    engine = make_engine(world.url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            mark_change(session, event_id, "important", "看", "alice")
    finally:
        engine.dispose()
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", world.url)
    assert main(["changes", "--mark", "important", "--json"]) == 0
    assert [(c["id"], c["mark"]) for c in json.loads(capsys.readouterr().out)] == [(event_id, "important")]
    assert main(["changes", "--mark", "unreviewed", "--json"]) == 0
    assert event_id not in [c["id"] for c in json.loads(capsys.readouterr().out)]
    assert main(["changes", "--mark", "important"]) == 0
    assert "<important>" in capsys.readouterr().out
