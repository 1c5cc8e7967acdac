"""Issue 17, point 1: see the mail in the embedded default.

The parts `make run` starts (scripts/run-with-mail.sh), each a real process on 127.0.0.1: the local
mail sink (scripts/mail_sink.py), the demo sources, `policywatch web`. The pipeline runs as the
`policywatch` CLI rather than Airflow (Airflow standalone is too heavy for the test machine; the
DAGs call the same functions). After `demo step`, the alert is on the Mail page, read in a real
browser (headless Chromium), rendered as the subscriber sees it, HTML and text.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

from policywatch.demosite.server import DemoServer
from policywatch.demosite.site import demo_config

PROJECT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def process(args: list[str], env: dict[str, str], ready: str) -> Iterator[subprocess.Popen[bytes]]:
    """A process that is up once `ready` (a URL, or host:port for a TCP server) answers."""
    proc = subprocess.Popen(args, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"{args[1:3]} exited: {proc.stdout.read().decode()[-2000:] if proc.stdout else ''}"
                )
            try:
                if ready.startswith("http"):
                    requests.get(ready, timeout=2)
                else:
                    host, port = ready.split(":")
                    socket.create_connection((host, int(port)), 1).close()
                break
            except (requests.ConnectionError, OSError):
                assert time.monotonic() < deadline, f"{args} did not start"
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "policywatch.cli", *args], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_demo_step_then_the_alert_is_on_the_mail_page_in_a_browser(tmp_path: Path, sqlite_url: str) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/ensure-browser.sh"
    sink_port, web_port = free_port(), free_port()
    mailbox = tmp_path / "mail"
    state = tmp_path / "demo-site.json"
    with DemoServer("127.0.0.1", 0, state) as demo:
        config = tmp_path / "demo.yaml"
        config.write_text(demo_config(demo.base_url), encoding="utf-8")
        env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT),
            "POLICYWATCH_DATABASE_URL": sqlite_url,
            "POLICYWATCH_CONFIG": str(config),
            "POLICYWATCH_SMTP_URL": f"smtp://127.0.0.1:{sink_port}",
            "POLICYWATCH_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        }
        sink_args = [sys.executable, "scripts/mail_sink.py", "--port", str(sink_port), "--dir", str(mailbox)]
        web_args = [
            sys.executable,
            "-m",
            "policywatch.cli",
            "web",
            "--host",
            "127.0.0.1",
            "--port",
            str(web_port),
        ]
        with (
            process(sink_args, env, f"127.0.0.1:{sink_port}"),
            process(web_args, env, f"http://127.0.0.1:{web_port}/mail") as _web,
        ):
            cli(env, "run")  # the baseline: silent
            assert (
                requests.get(f"http://127.0.0.1:{web_port}/mail", timeout=10).text.count('class="mail"') == 0
            )
            cli(env, "demo", "step", "--state", str(state))
            out = cli(env, "run")
            assert "alerts: 1 sent" in out or "1 sent" in out, out
            # The sink really received it (a file in its Maildir) ...
            [kept] = list((mailbox / "new").glob("*.eml"))
            received = message_from_bytes(kept.read_bytes(), policy=default_policy)
            assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            subject = str(received["Subject"])
            # ... and the Mail page shows it, newest first, as the subscriber sees it.
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
                    dialogs: list[str] = []
                    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                    page.goto(f"http://127.0.0.1:{web_port}/mail", wait_until="load")
                    rows = page.locator("tr.mail")
                    assert rows.count() == 1
                    assert subject in rows.first.inner_text()
                    rows.first.locator("a").click()
                    page.wait_for_load_state("load")
                    assert page.locator("h1").inner_text() == subject
                    text = page.locator("#text").inner_text()
                    assert "退订 unsubscribe" in text and "/unsubscribe/" in text
                    frame = page.frame_locator("iframe")
                    assert subject.split(": ", 1)[1][:10] in frame.locator("h1").inner_text()
                    assert frame.locator("a", has_text="退订 unsubscribe").count() == 1
                    page.screenshot(path=str(tmp_path / "mail.png"), full_page=True)
                    assert dialogs == []
                finally:
                    browser.close()
    assert (tmp_path / "mail.png").stat().st_size > 10_000
