"""The challenge table (crawlers.challenge.RULES): every row recognised on its own fixture, the
reason naming the vendor, genuine pages never flagged, and the default Fetcher refusing each
vendor's live challenge (tests/support/challenges.py) as a fetch error that names it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlers import Fetcher, detect_challenge
from crawlers.challenge import RULES, challenge_tag, classify_challenge, rule_for
from tests.support.challenges import (
    RIVERS_PREFIX,
    ChallengeSite,
    aliyun_page,
    jiasule_stage1,
    jiasule_stage2,
    rivers_page,
)

REALPAGES = Path(__file__).parent / "fixtures" / "realpages"


def small(body: str, title: str = "提示") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>{body}</body></html>"


# One fixture (status, headers, body) per row of the table, as each vendor answers a first visit.
FIXTURES: dict[str, list[tuple[int, dict[str, str], str]]] = {
    "challenge:jiasule": [
        (
            521,
            {"Set-Cookie": "__jsluid_s=6f1b0c2d3e4f; max-age=31536000; path=/"},
            jiasule_stage1(1733211123, [101, 202, 303, 404, 505]),
        ),
        (521, {}, jiasule_stage2("sha256", "a1b2c3d4e5f6", "1733211123|0|", "0" * 64)),
        (200, {}, "<script>var x='__jsl_clearance_s';</script>"),
    ],
    "challenge:rivers": [
        (412, {"Set-Cookie": f"{RIVERS_PREFIX}S=abc; path=/"}, rivers_page("c" * 48, 74203, "qEcrr" * 8)),
        (202, {}, rivers_page("c" * 48, 74203, "qEcrr" * 8)),
        (200, {}, rivers_page("c" * 48, 74203, "qEcrr" * 8).replace("$_ts", "$_xx")),  # r='m' alone, 200
        (412, {}, ""),
    ],
    "challenge:aliyun-waf": [
        (200, {"Set-Cookie": "acw_tc=2f6a1f8f17332111; path=/; HttpOnly"}, aliyun_page("3F0A" * 10)),
        (
            200,
            {"Set-Cookie": "acw_tc=2f6a1f8f17332111; path=/"},
            small(
                "<script>var arg1='AB12CD34EF56AB12CD34EF56AB12';document.cookie='x='+arg1;location.reload()</script>"
            ),
        ),
    ],
    "challenge:yunsuo": [
        (
            200,
            {"Set-Cookie": "yunsuo_session_verify=8a7b6c5d; path=/"},
            small("<script>window.location.href='/?security_verify_data=313932302c31303830';</script>"),
        ),
    ],
    "challenge:safedog": [
        (200, {"Set-Cookie": "safedog-flow-item=A1B2C3; path=/"}, small("<p>请稍候……</p>")),
        (
            403,
            {},
            small("<h1>网站防火墙</h1><p>安全狗提醒：您的请求带有不合法参数，已被网站管理员设置拦截！</p>"),
        ),
    ],
    "challenge:cloudflare": [
        (403, {"cf-mitigated": "challenge"}, "<html></html>"),
        (503, {}, (Path(__file__).parent / "fixtures" / "fetch" / "cloudflare_503.html").read_text()),
    ],
    "challenge:wzws": [
        (200, {}, small("<script>var wzwschallenge='ab12';var wzwschallengex='cd';</script>")),
    ],
    "challenge:js-cookie": [
        (200, {}, "<html><script>document.cookie='a=1';location.reload()</script></html>"),
    ],
    "blocked:ip": [
        (200, {}, small("<h2>访问异常页面</h2><p>您的IP访问过于频繁，请稍后再试。</p>", "访问异常页面")),
    ],
    "blocked:waf": [
        (200, {}, (Path(__file__).parent / "fixtures" / "fetch" / "waf_200.html").read_text()),
        (403, {}, small("<h1>访问被拒绝</h1>")),
    ],
    "blocked:403": [
        (403, {}, small("<h1>Forbidden</h1>")),
    ],
}


def test_every_row_has_a_fixture() -> None:
    assert {rule.tag for rule in RULES} == set(FIXTURES)


@pytest.mark.parametrize(
    ("tag", "status", "headers", "body"),
    [(tag, *case) for tag, cases in FIXTURES.items() for case in cases],
    ids=[f"{tag}-{i}" for tag, cases in FIXTURES.items() for i in range(len(cases))],
)
def test_each_row_recognises_its_fixture(tag: str, status: int, headers: dict[str, str], body: str) -> None:
    match = classify_challenge(status, headers, body)
    assert match is not None and match.tag == tag, match
    reason = detect_challenge(status, headers, body)
    if rule_for(tag).fetch_error:  # type: ignore[union-attr]
        assert reason is not None and reason.startswith(f"anti-bot challenge page (HTTP {status}): {tag}")
        assert challenge_tag(reason) == tag
    else:  # the default Fetcher names it itself: "HTTP 403 (blocked:403)" (tests/test_fetch.py)
        assert reason is None


def test_genuine_pages_are_not_challenges() -> None:
    truth = {row["key"]: row for row in json.loads((REALPAGES / "truth.json").read_text())}
    checked = 0
    for path in sorted((REALPAGES / "pages").glob("*.html")):
        text = path.read_bytes().decode("utf-8", "replace")
        antibot = path.stem.startswith("antibot-") or "rs-shell" in path.stem
        match = classify_challenge(200, {}, text, include_plain=False)
        assert (match is not None) == antibot, (path.name, match, truth.get(path.stem, {}).get("page_type"))
        checked += 1
    assert checked >= 10


def test_a_cdn_cookie_on_a_real_page_is_not_a_challenge() -> None:
    page = small("<div class='article'>" + "关于推进数字经济发展的通知。" * 80 + "</div>")
    assert classify_challenge(200, {"Set-Cookie": "acw_tc=1; path=/"}, page) is None
    assert classify_challenge(200, {"Set-Cookie": "__jsluid_s=1; path=/"}, page) is None
    assert classify_challenge(200, {"Set-Cookie": "safedog-flow-item=1"}, page) is None


def test_passed_cookies_tell_the_browser_it_got_through() -> None:
    jiasule, rivers, aliyun = (
        rule_for(t) for t in ("challenge:jiasule", "challenge:rivers", "challenge:aliyun-waf")
    )
    assert jiasule and rivers and aliyun
    assert not jiasule.passed(["__jsluid_s"]) and jiasule.passed(["__jsluid_s", "__jsl_clearance_s"])
    assert not rivers.passed([RIVERS_PREFIX + "S"]) and rivers.passed(
        [RIVERS_PREFIX + "S", RIVERS_PREFIX + "T"]
    )
    assert not aliyun.passed(["acw_tc"]) and aliyun.passed(["acw_tc", "acw_sc__v2"])


def test_challenge_tag_of_reasons() -> None:
    assert challenge_tag("anti-bot challenge page (HTTP 521): challenge:jiasule (…)") == "challenge:jiasule"
    assert challenge_tag("HTTP 403") is None and challenge_tag(None) is None


# -- the default Fetcher against the live local sites --------------------------------------------


@pytest.fixture
def challenge_site() -> Iterator[ChallengeSite]:
    site = ChallengeSite()
    try:
        yield site
    finally:
        site.close()


@pytest.mark.parametrize(
    ("prefix", "tag"),
    [("/jsl/", "challenge:jiasule"), ("/rs/", "challenge:rivers"), ("/acw/", "challenge:aliyun-waf")],
)
def test_default_fetcher_reports_each_vendor(challenge_site: ChallengeSite, prefix: str, tag: str) -> None:
    with Fetcher(max_attempts=1) as fetcher:
        for n in (1, 2):
            result = fetcher.fetch_page(
                challenge_site.url(f"{prefix}art/{n}.html"), min_delay_s=0, allow_private=True
            )
            assert result.error_kind == "challenge" and not result.ok and result.text is None
            assert challenge_tag(result.error) == tag, result.error
    assert challenge_site.served(prefix) == []  # never the document


@pytest.mark.parametrize("status", [412, 202, 200])
def test_default_fetcher_reports_rivers_whatever_the_status(status: int) -> None:
    site = ChallengeSite(rivers_status=status)
    try:
        with Fetcher(max_attempts=1) as fetcher:
            result = fetcher.fetch_page(site.url("/rs/art/1.html"), min_delay_s=0, allow_private=True)
        assert result.error_kind == "challenge" and challenge_tag(result.error) == "challenge:rivers"
    finally:
        site.close()


def test_second_jiasule_stage_is_reported_too(challenge_site: ChallengeSite) -> None:
    """A client that got past stage 1 (by a cookie someone computed) meets go({...}): still jiasule."""
    with Fetcher(max_attempts=1) as fetcher:
        url = challenge_site.url("/jsl/art/1.html")
        first = fetcher.fetch_page(url, min_delay_s=0, allow_private=True)
        assert first.status == 521
        jsluid = next(iter(challenge_site._jsl))
        stage1 = challenge_site._jsl[jsluid][0]
        fetcher._session(url.split("/")[2], False).cookies.set("__jsl_clearance_s", stage1)
        second = fetcher.fetch_page(url, min_delay_s=0, allow_private=True)
    assert second.status == 521 and challenge_tag(second.error) == "challenge:jiasule"
    assert "__jsl_clearance" in second.error
