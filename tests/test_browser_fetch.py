"""crawlers.browser.BrowserFetcher: headless Chromium (Debian's, via Playwright) against local
sites that defend themselves like 加速乐, 瑞数 and Alibaba Cloud WAF with challenges computed in
JavaScript (tests/support/challenges.py), a list filled by script, a Hanweb column; the cheap path
(cookies the browser earned, reused by plain requests); the rules every browser request obeys; and
the pipeline reading a browser source end to end (one edit, one `changed` event)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crawlers import Fetcher
from crawlers.browser import CHROMIUM, BrowserFetcher
from crawlers.challenge import challenge_tag
from crawlers.listings import fetch_listing, parse_html_listing
from policywatch.config import parse_config
from policywatch.observe import make_fetcher
from policywatch.pipeline import run_cycle
from storage.db import make_engine, session_factory
from storage.models import ChangeEvent, DocumentVersion
from tests.support.challenges import PARAS, ChallengeSite


@pytest.fixture(autouse=True)
def chromium_installed() -> None:
    """make test installs Debian's chromium (scripts/ensure-browser.sh): without it, fail, never skip."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run scripts/ensure-browser.sh"


VENDORS = [("/jsl/", "challenge:jiasule"), ("/rs/", "challenge:rivers"), ("/acw/", "challenge:aliyun-waf")]


@pytest.fixture
def challenge_site() -> Iterator[ChallengeSite]:
    site = ChallengeSite()
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def browser() -> Iterator[BrowserFetcher]:
    fetcher = BrowserFetcher(max_attempts=1, read_timeout=10)
    try:
        yield fetcher
    finally:
        fetcher.close()


def get(fetcher: BrowserFetcher | Fetcher, site: ChallengeSite, path: str, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("min_delay_s", 0)
    kwargs.setdefault("allow_private", True)
    return fetcher.fetch_page(site.url(path), **kwargs)


@pytest.mark.parametrize(("prefix", "tag"), VENDORS)
def test_every_document_is_read_through_the_challenge(
    challenge_site: ChallengeSite, browser: BrowserFetcher, prefix: str, tag: str
) -> None:
    for n in (1, 2, 3):
        result = get(browser, challenge_site, f"{prefix}art/{n}.html")
        assert result.ok, (result.error_kind, result.error)
        assert f"第{n}号文件" in (result.text or "") and result.status == 200
        assert challenge_tag(result.error) is None
    assert browser.stats["challenges_passed"] == 1
    # The cheap path: the browser read the first page; the cookies it earned carried the others
    # over plain HTTP.
    assert len(challenge_site.served(prefix, browser=True)) == 1
    assert len(challenge_site.served(prefix, browser=False)) == 2
    assert browser.stats["http"] == 2 and browser.stats["browser"] == 1


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256"])
def test_jiasule_second_stage_with_each_hash(algorithm: str) -> None:
    """The go({...}) stage hashes with the algorithm the server names: each is computed in the page."""
    site = ChallengeSite(jiasule_hash=algorithm)
    try:
        with BrowserFetcher(max_attempts=1, cheap_path=False) as browser:
            result = get(browser, site, "/jsl/art/1.html")
        assert result.ok, result.error
        assert "第1号文件" in (result.text or "")
        # Three documents: stage 1 (521), stage 2 (521 go({...})), the page (200).
        assert [h.passed for h in site.requests if h.path == "/jsl/art/1.html"] == [False, False, True]
    finally:
        site.close()


@pytest.mark.parametrize("status", [412, 202, 200])
def test_rivers_first_visit_answers(status: int) -> None:
    site = ChallengeSite(rivers_status=status)
    try:
        with BrowserFetcher(max_attempts=1) as browser:
            result = get(browser, site, "/rs/art/2.html")
        assert result.ok and "第2号文件" in (result.text or ""), result.error
    finally:
        site.close()


def test_a_challenge_that_comes_back_sends_the_page_to_the_browser_again(
    challenge_site: ChallengeSite, browser: BrowserFetcher
) -> None:
    assert get(browser, challenge_site, "/jsl/art/1.html").ok
    assert get(browser, challenge_site, "/jsl/art/2.html").ok  # cheap
    challenge_site.revoke()  # the clearances expire
    result = get(browser, challenge_site, "/jsl/art/3.html")
    assert result.ok and "第3号文件" in (result.text or ""), result.error
    assert browser.stats["challenges_on_http"] == 1 and browser.stats["challenges_passed"] == 2
    assert get(browser, challenge_site, "/jsl/art/1.html").ok  # and cheap again
    assert browser.stats["http"] == 2


def test_rivers_clearance_holds_for_the_browsers_user_agent(challenge_site: ChallengeSite) -> None:
    """<P>T is computed from navigator.userAgent: the plain requests send the same one."""
    with BrowserFetcher(max_attempts=1, user_agent="PolicyWatch-test/1.0") as browser:
        assert get(browser, challenge_site, "/rs/art/1.html").ok
        assert get(browser, challenge_site, "/rs/art/2.html").ok
    plain = challenge_site.served("/rs/", browser=False)
    assert len(plain) == 1 and plain[0].user_agent == "PolicyWatch-test/1.0"


def test_a_list_filled_by_script_is_discovered(
    challenge_site: ChallengeSite, browser: BrowserFetcher
) -> None:
    pattern = re.compile(r"/jsl/art/")
    url = challenge_site.url("/jsl/list/index.html")
    with Fetcher(max_attempts=1) as plain:  # over requests: the challenge, and no list anyway
        assert (
            fetch_listing(plain, url, kind="html", allow_private=True, min_delay_s=0).error_kind
            == "challenge"
        )
    assert get(browser, challenge_site, "/jsl/art/1.html").ok  # the host is on the cheap path now
    result = fetch_listing(browser, url, kind="html", allow_private=True, min_delay_s=0)
    assert result.ok, result.error
    links = parse_html_listing(result.text or "", result.final_url, pattern)
    assert [link.url for link in links] == [challenge_site.url(p) for p in challenge_site.js_list]
    assert [link.title for link in links] == ["文件1", "文件2", "文件3"]
    # Read again: still rendered (the browser remembers that this directory is filled by script).
    again = fetch_listing(browser, url, kind="html", allow_private=True, min_delay_s=0)
    assert len(parse_html_listing(again.text or "", again.final_url, pattern)) == 3


def test_a_hanweb_column_filled_from_dataproxy_is_discovered(
    challenge_site: ChallengeSite, browser: BrowserFetcher
) -> None:
    result = get(browser, challenge_site, "/open/col/col1229/index.html")
    assert result.ok, result.error
    links = parse_html_listing(result.text or "", result.final_url, re.compile(r"/open/art/"))
    assert [link.url for link in links] == [challenge_site.url(p) for p, _, _ in challenge_site.hanweb[:15]]


def test_images_fonts_and_third_parties_are_refused(
    challenge_site: ChallengeSite, browser: BrowserFetcher
) -> None:
    assert get(browser, challenge_site, "/jsl/list/index.html").ok
    assert challenge_site.hits["/jsl/img/banner.png"] == 0
    assert browser.stats["blocked_requests"] >= 2  # the image and http://third-party.example/


def test_robots_txt_applies_to_the_browser(challenge_site: ChallengeSite, browser: BrowserFetcher) -> None:
    challenge_site.documents["/open/private/1.html"] = "<html><body>secret</body></html>"
    result = get(browser, challenge_site, "/open/private/1.html")
    assert result.error_kind == "robots" and not result.ok
    assert challenge_site.hits["/open/private/1.html"] == 0


def test_redirects_are_followed_hop_by_hop_through_the_rules(
    challenge_site: ChallengeSite, browser: BrowserFetcher
) -> None:
    """Chromium follows a redirect without calling the route handler for its target: the fetcher
    stops it and navigates to the target itself, so every hop is checked."""
    target = "/open/art/2024/3/1/art_1229_1.html"
    challenge_site.redirects["/open/moved.html"] = target
    result = get(browser, challenge_site, "/open/moved.html")
    assert result.ok and result.final_url == challenge_site.url(target), result.error
    assert result.redirects == [challenge_site.url("/open/moved.html")]
    challenge_site.documents["/open/private/2.html"] = "<html><body>secret</body></html>"
    challenge_site.redirects["/open/go.html"] = "/open/private/2.html"
    result = get(browser, challenge_site, "/open/go.html")
    assert result.error_kind == "robots" and not result.ok
    assert challenge_site.hits["/open/private/2.html"] == 0


def test_the_private_address_guard_applies_to_the_browser(
    challenge_site: ChallengeSite, browser: BrowserFetcher
) -> None:
    result = get(browser, challenge_site, "/jsl/art/1.html", allow_private=False)
    assert result.error_kind == "blocked" and not result.ok
    assert challenge_site.hits["/jsl/art/1.html"] == 0


def test_politeness_spaces_the_browsers_requests(challenge_site: ChallengeSite) -> None:
    with BrowserFetcher(max_attempts=1, respect_robots=False, cheap_path=False) as browser:
        started = time.monotonic()
        assert get(browser, challenge_site, "/acw/art/1.html", min_delay_s=0.3).ok
    times = [h.at for h in challenge_site.requests]
    assert len(times) >= 2  # the challenge, and the page after the reload
    # Slots are reserved 0.3 s apart from the first request on; a request may reach the server late
    # (Chromium starting, a busy machine), never early: the last one comes no sooner than its slot.
    assert times[-1] - started >= 0.3 * (len(times) - 1) - 0.02


def test_size_limit(challenge_site: ChallengeSite) -> None:
    with BrowserFetcher(max_attempts=1, max_bytes=2000, cheap_path=False) as browser:
        result = get(browser, challenge_site, "/open/art/2024/3/1/art_1229_1.html")
    assert result.error_kind == "too_large" and not result.ok


def test_feeds_stay_on_plain_http_once_the_challenge_is_passed(
    challenge_site: ChallengeSite, browser: BrowserFetcher
) -> None:
    result = fetch_listing(
        browser, challenge_site.url("/jsl/list/data.json"), kind="json", allow_private=True, min_delay_s=0
    )
    assert result.ok and '"url"' in (result.text or ""), result.error
    assert challenge_site.served("/jsl/list/data.json", browser=False)


def test_factory_takes_the_pipelines_settings() -> None:
    config = parse_config(
        """
sources:
  - id: s
    name: s
    listing_urls: ["https://www.example.gov.cn/list/"]
    link_pattern: "/art/"
    fetcher: browser
settings:
  user_agent: "UA-test/2"
  max_body_bytes: 12345
  read_timeout_s: 7
  respect_robots: false
"""
    )
    fetcher = make_fetcher(config.settings, source=config.sources[0])
    assert isinstance(fetcher, BrowserFetcher)
    try:
        assert (fetcher.user_agent, fetcher.max_bytes, fetcher.respect_robots) == ("UA-test/2", 12345, False)
        assert fetcher.http.read_timeout == 7 and fetcher._thread is None  # Chromium starts at the first load
    finally:
        fetcher.close()


# -- end to end through the pipeline ---------------------------------------------------------------


def _config(site: ChallengeSite, fetcher: str) -> str:
    return f"""
sources:
  - id: miit-like
    name: 加速乐后面的列表
    listing_urls: ["{site.url("/jsl/list/index.html")}"]
    link_pattern: "/jsl/art/"
    min_delay_s: 0
    fetcher: {fetcher}
  - id: rivers-like
    name: 瑞数后面的文件
    pages: ["{site.url("/rs/art/1.html")}", "{site.url("/rs/art/2.html")}"]
    min_delay_s: 0
    fetcher: {fetcher}
  - id: aliyun-like
    name: 阿里云WAF后面的文件
    pages: ["{site.url("/acw/art/1.html")}"]
    min_delay_s: 0
    fetcher: {fetcher}
settings:
  backoff_base_s: 0.01
  max_attempts: 1
  read_timeout_s: 10
"""


def test_pipeline_with_the_browser_fetcher_one_edit_one_changed_event(
    challenge_site: ChallengeSite, tmp_path: Path
) -> None:
    config = parse_config(_config(challenge_site, "browser"))
    engine = make_engine(f"sqlite:///{tmp_path / 'pw.db'}")
    try:
        with BrowserFetcher(max_attempts=1, read_timeout=10) as browser:
            first = run_cycle(config, engine, fetcher=browser)
            assert first.errors == 0 and first.baseline == 6, first.failures
            second = run_cycle(config, engine, fetcher=browser, full=True)
            assert (second.changed, second.new, second.errors) == (0, 0, 0), second.failures
            challenge_site.edit("/jsl/art/2.html", PARAS[3][:12], PARAS[3][:12] + "（已修订）")
            challenge_site.edit("/rs/art/1.html", PARAS[5][:12], PARAS[5][:12] + "（已修订）")
            challenge_site.revoke()  # and the clearances expire between cycles
            third = run_cycle(config, engine, fetcher=browser, full=True)
            assert (third.changed, third.new, third.removed, third.errors) == (2, 0, 0, 0), third.failures
            fourth = run_cycle(config, engine, fetcher=browser, full=True)
            assert (fourth.changed, fourth.errors) == (0, 0), fourth.failures
            assert browser.stats["http"] > browser.stats["browser"]  # most requests on the cheap path
        sessions = session_factory(engine)
        with sessions() as s:
            kinds = [e.kind for e in s.scalars(select(ChangeEvent))]
            assert kinds == ["changed", "changed"]
            assert s.scalar(select(func.count()).select_from(DocumentVersion)) == 8
    finally:
        engine.dispose()


def test_pipeline_with_the_default_fetcher_records_errors_naming_the_vendor(
    challenge_site: ChallengeSite, tmp_path: Path
) -> None:
    config = parse_config(_config(challenge_site, "http"))
    engine = make_engine(f"sqlite:///{tmp_path / 'pw.db'}")
    try:
        summary = run_cycle(config, engine)
        tags = sorted({challenge_tag(f["error"]) for f in summary.failures})
        assert tags == ["challenge:aliyun-waf", "challenge:jiasule", "challenge:rivers"], summary.failures
        assert summary.baseline == 0 and summary.new == 0
        with session_factory(engine)() as s:
            assert s.scalar(select(func.count()).select_from(DocumentVersion)) == 0
            assert s.scalar(select(func.count()).select_from(ChangeEvent)) == 0
    finally:
        engine.dispose()


def test_a_browser_source_and_a_hanweb_listing_from_the_configuration_alone(
    challenge_site: ChallengeSite, tmp_path: Path
) -> None:
    """`fetcher: browser` and `kind: hanweb` as an operator writes them: run_cycle makes the browser
    itself (one per cycle) and pages through the dataproxy.jsp list by its record window."""
    dataproxy = challenge_site.url(
        "/open/module/web/jpage/dataproxy.jsp?startrecord=1&endrecord=15&perpage=15&columnid=1229&webid=1"
    )
    config = parse_config(
        _config(challenge_site, "browser")
        + """
  processes: 1
"""
    )
    hanweb = parse_config(
        f"""
sources:
  - id: hanweb-column
    name: 大汉栏目
    listings:
      - url: "{dataproxy}"
        kind: hanweb
        link_pattern: "/open/art/"
        pages: {{max: 2}}
    min_delay_s: 0
settings:
  backoff_base_s: 0.01
  max_attempts: 1
"""
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'pw.db'}")
    try:
        first = run_cycle(config, engine)
        assert first.errors == 0 and first.baseline == 6, first.failures
        listed = run_cycle(hanweb, engine)
        assert listed.errors == 0 and listed.baseline == 23 == len(challenge_site.hanweb), listed.failures
        assert len(challenge_site.served("/open/module/web/jpage/dataproxy.jsp")) == 2
    finally:
        engine.dispose()
