"""The demo: serve the demo sources, run a cycle, `policywatch demo step`, run a cycle: the expected events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from policywatch.cli import main
from policywatch.config import load_config, parse_config
from policywatch.demosite.server import DemoServer
from policywatch.demosite.site import STEPS, demo_config, read_step
from policywatch.pipeline import run_cycle
from storage.db import make_engine, session_factory
from storage.models import ChangeEvent, Document

ROOT = Path(__file__).parent.parent


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[DemoServer, Path]]:
    state = tmp_path / "demo-site.json"
    with DemoServer("127.0.0.1", 0, state) as server:
        yield server, state


def events(engine, since: int = 0) -> list[ChangeEvent]:  # type: ignore[no-untyped-def]
    with session_factory(engine)() as session:
        return list(
            session.scalars(select(ChangeEvent).where(ChangeEvent.id > since).order_by(ChangeEvent.id))
        )


def test_demo_steps_end_to_end(demo, db_url: str, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, state = demo
    monkeypatch.delenv("POLICYWATCH_SMTP_URL", raising=False)
    config = parse_config(demo_config(server.base_url))
    engine = make_engine(db_url)
    try:
        first = run_cycle(config, engine)
        assert (first.baseline, first.errors) == (5, 0), first.failures
        assert events(engine) == []
        seen = 0
        for step in STEPS:
            assert main(["demo", "step", "--state", str(state)]) == 0
            out = capsys.readouterr().out
            assert f"step {step.number} of {len(STEPS)}" in out and step.expect in out
            summary = run_cycle(config, engine)
            assert summary.errors == 0, summary.failures
            new_events = events(engine, seen)
            assert [(e.kind, e.source_id) for e in new_events] == [(step.expect, step.source)], step
            assert new_events[0].relevant is True
            seen = new_events[-1].id
            if step.expect == "changed":
                assert "8354 → 8500" in new_events[0].summary
            if step.expect == "republished":
                with session_factory(engine)() as session:
                    original = session.get(Document, new_events[0].original_document_id)
                    assert original is not None and original.source_id == "demo-gov"
            if step.number >= 2:
                assert summary.not_modified >= 3  # unchanged gov and news pages answer 304
        # Every change has happened: a further step says so and changes nothing.
        assert main(["demo", "step", "--state", str(state)]) == 0
        assert "every change has happened" in capsys.readouterr().out
        assert read_step(state) == len(STEPS)
        assert run_cycle(config, engine).errors == 0
        assert events(engine, seen) == []
    finally:
        engine.dispose()


def test_step_reset_and_the_served_pages_follow_the_state_file(demo) -> None:  # type: ignore[no-untyped-def]
    server, state = demo

    def notice_listed() -> bool:
        with urllib.request.urlopen(server.base_url + "/gov/zhengce/zuixin/ZUIXINZHENGCE.json") as resp:
            return any("公共数据" in item["TITLE"] for item in json.load(resp))

    assert not notice_listed()
    # Another process makes the step: the running server serves the new state at once.
    subprocess.run(
        [sys.executable, "-m", "policywatch.cli", "demo", "step", "--state", str(state)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    assert read_step(state) == 1 and notice_listed()
    assert main(["demo", "step", "--reset", "--state", str(state)]) == 0
    assert read_step(state) == 0 and not notice_listed()


def test_gbk_provincial_pages_are_served_as_gbk(demo) -> None:  # type: ignore[no-untyped-def]
    server, _ = demo
    with urllib.request.urlopen(server.base_url + "/province/zfwj/index.html") as resp:
        body = resp.read()
        assert resp.headers["Content-Type"] == "text/html"  # no charset: the page's <meta> says it
    assert b"charset=gb2312" in body and "省政府文件".encode("gbk") in body
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.base_url + "/province/zfwj/index_2.html")
    assert info.value.code == 404  # the listing's last page is index_1.html


def test_demo_config_file_matches_the_demo_site() -> None:
    shipped = load_config(ROOT / "config" / "demo.yaml")
    generated = parse_config(demo_config("http://127.0.0.1:8765"))
    assert shipped.sources == generated.sources
    assert [s.id for s in shipped.sources] == ["demo-gov", "demo-province", "demo-news"]
    assert {s.all_listings[0].kind for s in shipped.sources} == {"json", "html", "rss"}


def test_demo_serve_command(tmp_path: Path) -> None:
    """`policywatch demo serve` in its own process, on a free port, answering until it is stopped."""
    env = {**os.environ, "POLICYWATCH_DEMO_STATE": str(tmp_path / "state.json")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "policywatch.cli", "demo", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("demo sources on http://127.0.0.1:"), line
        base = line.split()[3].rstrip("/")
        with urllib.request.urlopen(base + "/") as resp:
            assert "step 0 of 4" in resp.read().decode("utf-8")
        with urllib.request.urlopen(base + "/news/rss.xml") as resp:
            assert resp.headers["Content-Type"].startswith("application/rss+xml")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
