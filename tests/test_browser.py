"""A real browser (Debian's headless Chromium, driven by Playwright) against `policywatch web`:
open the changes page, follow a change to its diff, and keep screenshots of both.

Screenshots go to the test's tmp dir and are copied to /work/notes/ (changes.png, diff.png) when
that folder exists, for people to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

from tests.support.site import LocalSite
from tests.test_web_support import build_world

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTES = Path("/work/notes")
PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web_server(site: LocalSite, sqlite_url: str) -> Iterator[str]:
    """`policywatch web` in its own process, on a store the pipeline filled."""
    build_world(site, sqlite_url)
    port = free_port()
    env = {**os.environ, "POLICYWATCH_DATABASE_URL": sqlite_url, "PYTHONPATH": str(PROJECT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "policywatch.cli", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/api/sources", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read() if server.stdout else ""
                pytest.fail(f"policywatch web did not start: {output[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_changes_page_to_diff_in_chromium(web_server: str, tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/ensure-browser.sh"
    shots = {"changes": tmp_path / "changes.png", "diff": tmp_path / "diff.png"}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(web_server + "/changes?kind=changed", wait_until="load")
            assert page.locator("tr.change").count() == 2
            assert "Recent changes" in page.locator("h1").inner_text()
            page.screenshot(path=str(shots["changes"]), full_page=True)

            # The oldest change: 8354 → 9000 and a moved paragraph.
            page.locator("tr.change a.difflink").last.click()
            page.wait_for_load_state("load")
            assert "/diff/" in page.url
            deleted = page.locator("del.pw-del").all_inner_texts()
            inserted = page.locator("ins.pw-ins").all_inner_texts()
            assert "8354" in deleted and "9000" in inserted
            assert page.locator(".note").first.inner_text().startswith("moved from paragraph")
            fold = page.locator("details.fold").first
            assert not fold.evaluate("d => d.open")
            fold.locator("summary").click()  # unchanged stretches unfold in place
            assert fold.evaluate("d => d.open")
            fold.evaluate("d => d.open = false")
            page.screenshot(path=str(shots["diff"]), full_page=False)

            # The <script> title of a new document is text on the page, never run.
            page.goto(web_server + "/changes?kind=new", wait_until="load")
            assert "<script>alert(" in page.locator("#changes").inner_text()
            assert dialogs == []
        finally:
            browser.close()
    for shot in shots.values():
        assert shot.stat().st_size > 10_000
        if NOTES.is_dir():
            shutil.copy(shot, NOTES / shot.name)
