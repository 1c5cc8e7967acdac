"""A real browser marks a change important with a note on the change list, then filters the list
to important changes and sees only that one (Debian's headless Chromium via Playwright, against
`policywatch web` in its own process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, web_server  # noqa: F401  (the fixture)


@pytest.fixture
def analyst(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POLICYWATCH_WEB_USER", "王分析")
    return "王分析"


def test_mark_a_change_important_and_filter_it(analyst: str, web_server: str) -> None:  # noqa: F811
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/ensure-browser.sh"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page.goto(web_server + "/changes", wait_until="load")
            rows = page.locator("tr.change")
            assert rows.count() > 2
            assert analyst in page.locator("#changes thead").inner_text()
            row = page.locator("tr.change", has=page.locator("span.kind-changed")).first
            change_id = row.get_attribute("id")
            row.locator("select[name=mark]").select_option("important")
            row.locator("input[name=note]").fill("数字经济增加值目标上调，需报告")
            row.locator("form.mark-form button").click()
            page.wait_for_load_state("load")
            assert page.locator(f"#{change_id} .mark-important").count() == 1

            page.locator("form.filters select[name=mark]").select_option("important")
            page.locator("form.filters button[type=submit]").click()
            page.wait_for_load_state("load")
            assert "mark=important" in page.url
            assert [r.get_attribute("id") for r in page.locator("tr.change").all()] == [change_id]

            page.locator("form.filters select[name=mark]").select_option("unreviewed")
            page.locator("form.filters button[type=submit]").click()
            page.wait_for_load_state("load")
            unreviewed = [r.get_attribute("id") for r in page.locator("tr.change").all()]
            assert unreviewed and change_id not in unreviewed

            # The diff page of the change shows who marked it and why.
            page.goto(web_server + "/changes?mark=important", wait_until="load")
            page.locator("tr.change a.difflink").first.click()
            page.wait_for_load_state("load")
            history = page.locator("table.marks-history").inner_text()
            assert analyst in history and "数字经济增加值目标上调" in history
        finally:
            browser.close()
