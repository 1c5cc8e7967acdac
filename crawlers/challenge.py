"""Recognising anti-bot challenge and web-application-firewall pages (never policy content).

The recognition is a table (`RULES`): one row per vendor or kind of block page, with the statuses
it answers with, the markers in its body, the cookies it sets and the cookies that show it was
passed. `classify_challenge` returns the first row that matches; `detect_challenge` (what
`crawlers.fetch.Fetcher` calls) turns that into the fetch error's reason, which names the row's tag
(`challenge:jiasule`, `challenge:rivers`, `challenge:aliyun-waf`, `blocked:ip` ...);
`challenge_tag` reads the tag back out of a reason. The browser fetcher (`crawlers.browser`) asks
the same table whether a page it loaded is still a challenge, and which cookies prove it passed.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
_SCRIPT_RE = re.compile(r"<(script|style|noscript)\b[^>]*>(.*?)</\1\s*>", re.S | re.I)
_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_LOCATION_RE = re.compile(r"location(?:\.href|\.replace|\.reload|\.assign|\s*=)", re.I)
# Rivers/瑞数 marks its meta tag and inline scripts with an r='m' attribute; no CMS does.
_RIVERS_RM_RE = re.compile(r"<(?:meta|script)\b[^>]*\br\s*=\s*['\"]?m['\"]?[\s>/]", re.I)
# Alibaba Cloud WAF's slider/cookie page: `var arg1='<40 hex digits>';`
_ACW_ARG1_RE = re.compile(r"\barg1\s*=\s*['\"][0-9A-Fa-f]{20,}['\"]")
_TAG_IN_REASON_RE = re.compile(r"\b((?:challenge|blocked):[a-z0-9][a-z0-9-]*)")

# Pages this short (visible characters) are treated as "almost no text": a policy page has far more.
SMALL_PAGE_CHARS = 600


def visible_text(html: str) -> str:
    """The text a reader would see: no comments, scripts, styles or tags, whitespace collapsed."""
    text = _COMMENT_RE.sub(" ", html)
    text = _SCRIPT_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", html_lib.unescape(text)).strip()


def _script_chars(html: str) -> int:
    return sum(len(m.group(2)) for m in _SCRIPT_RE.finditer(html) if m.group(1).lower() == "script")


class _Page:
    """One response, with the derived facts rows ask about computed at most once (visible text is
    four regex passes and this runs on every page fetched)."""

    def __init__(self, status: int, headers: Mapping[str, str], text: str) -> None:
        self.status = status
        self.text = text or ""
        self.lower = self.text.lower()
        self.headers = {k.lower(): v for k, v in headers.items()}
        # requests joins repeated Set-Cookie headers with ", ", Playwright with "\n": a substring
        # test on "name=" reads both.
        self.set_cookie = self.headers.get("set-cookie", "").lower()
        self.error_status = status >= 400 or status == 202
        self._visible: int | None = None
        self._no_marker: bool | None = None

    def visible_len(self) -> int:
        if self._visible is None:
            self._visible = len(visible_text(self.text))
        return self._visible

    def small(self) -> bool:
        return self.visible_len() < SMALL_PAGE_CHARS

    def sets_cookie(self, names: Collection[str]) -> bool:
        return any(f"{name.lower()}=" in self.set_cookie for name in names)

    def has(self, markers: Collection[str]) -> str | None:
        if self._no_marker is None:
            # One scan for every row's markers first: almost every page holds none of them, and
            # then no row needs its own scans (one per marker over the whole page).
            self._no_marker = _ANY_MARKER is not None and _ANY_MARKER.search(self.lower) is None
        if self._no_marker:
            return None
        return next((m for m in markers if m in self.lower), None)


@dataclass(frozen=True)
class ChallengeRule:
    """One row of the table.

    A row matches when the status is one of `statuses` (empty: any) and
      - a `strong` marker is in the body (no genuine page shows one), or
      - a `markers` entry is in the body, or the response sets one of `cookies`, and the page is an
        error answer or has almost no visible text (so a long policy page that mentions a firewall,
        or a site behind the vendor's CDN that sets its cookie on every page, is not flagged), or
      - `check` (for what markers cannot say) returns True.
    `passed_cookies`: regexes of the cookie names a browser holds once it got through; with a
    non-challenge answer they tell the browser fetcher the challenge was passed.
    `fetch_error`: False for a row the default Fetcher reports in its own words (a plain 403 is
    "HTTP 403"); the browser fetcher reports it by tag.
    """

    tag: str
    vendor: str
    description: str
    statuses: frozenset[int] = frozenset()
    strong: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()
    cookies: tuple[str, ...] = ()
    passed_cookies: tuple[str, ...] = ()
    check: Callable[[_Page], bool] | None = field(default=None, compare=False)
    fetch_error: bool = True

    def matches(self, page: _Page) -> bool:
        if self.statuses and page.status not in self.statuses:
            return False
        if self.strong and page.has(self.strong):
            return True
        weak = (self.markers and page.has(self.markers)) or (self.cookies and page.sets_cookie(self.cookies))
        if weak and (page.error_status or page.small()):
            return True
        return self.check is not None and self.check(page)

    def passed(self, cookie_names: Collection[str]) -> bool:
        """Whether `cookie_names` (the browser's cookies for the host) hold this vendor's clearance."""
        if not self.passed_cookies:
            return True
        return any(re.search(p, name) for p in self.passed_cookies for name in cookie_names)


def _jiasule_521(page: _Page) -> bool:
    # 加速乐's first answer: 521 with a tiny script that builds __jsl_clearance_s out of pieces
    # (so the marker itself is not in the page) and reloads.
    return (
        page.status == 521 and "document.cookie" in page.lower and _reloads(page) and page.visible_len() < 200
    )


def _jiasule_go(page: _Page) -> bool:
    # The second stage: go({"bts":[...],"chars":"...","ct":"...","ha":"sha256",...}).
    return page.status == 521 and "go({" in page.lower and '"ha"' in page.lower


def _rivers(page: _Page) -> bool:
    if page.status == 412:
        # A GET without If-Match never legitimately ends in 412: Rivers/瑞数' first-visit answer.
        return True
    return ("$_ts" in page.text or bool(_RIVERS_RM_RE.search(page.text))) and (
        page.error_status or page.small()
    )


def _aliyun(page: _Page) -> bool:
    # Substring tests first: they are C scans, the regexes are not (this runs on every page fetched).
    return (
        "arg1" in page.text
        and "document.cookie" in page.lower
        and bool(_ACW_ARG1_RE.search(page.text))
        and page.small()
    )


def _reloads(page: _Page) -> bool:
    return "location" in page.lower and bool(_LOCATION_RE.search(page.text))


def _js_cookie(page: _Page) -> bool:
    if "document.cookie" not in page.lower or not _reloads(page):
        return False
    visible = page.visible_len()
    return visible < 200 and (page.status == 521 or _script_chars(page.text) >= visible)


RULES: tuple[ChallengeRule, ...] = (
    ChallengeRule(
        "challenge:cloudflare",
        "cloudflare",
        "Cloudflare challenge (cf-mitigated header)",
        check=lambda p: p.headers.get("cf-mitigated", "").lower() == "challenge",
    ),
    ChallengeRule(
        "challenge:rivers",
        "rivers",
        "Rivers/瑞数 $_ts script challenge",
        check=_rivers,
        passed_cookies=(r"^\w{6,}T$",),
    ),
    ChallengeRule(
        "challenge:jiasule",
        "jiasule",
        "Jiasule/加速乐 __jsl_clearance cookie challenge",
        strong=("__jsl_clearance",),
        cookies=("__jsluid_s", "__jsluid_h"),
        statuses=frozenset(),
        check=lambda p: _jiasule_521(p) or _jiasule_go(p),
        passed_cookies=(r"^__jsl_clearance(_s)?$",),
    ),
    ChallengeRule(
        "challenge:wzws",
        "wzws",
        "WZWS/网站卫士 JavaScript cookie challenge",
        strong=("wzwschallenge", "wzwstemplate"),
    ),
    ChallengeRule(
        "challenge:cloudflare",
        "cloudflare",
        "Cloudflare challenge",
        strong=("_cf_chl_opt", "cf-chl-bypass"),
        markers=("cf-chl", "just a moment...", "checking your browser"),
    ),
    ChallengeRule(
        "challenge:aliyun-waf",
        "aliyun-waf",
        "Alibaba Cloud WAF acw_sc__v2 cookie challenge",
        strong=("acw_sc__v2",),
        cookies=("acw_tc",),
        check=_aliyun,
        passed_cookies=(r"^acw_sc__v2$",),
    ),
    ChallengeRule(
        "challenge:yunsuo",
        "yunsuo",
        "Yunsuo/云锁 session verification",
        strong=("yunsuo_session_verify", "security_verify_data"),
        cookies=("yunsuo_session_verify",),
        markers=("yunsuo",),
    ),
    ChallengeRule(
        "challenge:safedog",
        "safedog",
        "SafeDog/安全狗 WAF page",
        cookies=("safedog-flow-item",),
        markers=("安全狗", "safedog"),
    ),
    ChallengeRule(
        "challenge:js-cookie",
        "js-cookie",
        "JavaScript cookie challenge (sets document.cookie and reloads)",
        check=_js_cookie,
    ),
    ChallengeRule(
        "blocked:ip",
        "ip-block",
        "访问异常 (IP blocked) page",
        markers=("访问异常页面", "访问异常", "您的ip已被", "ip已被封", "ip被封禁"),
    ),
    ChallengeRule(
        "blocked:waf",
        "waf",
        "firewall block page",
        markers=(
            "访问受限",
            "访问被拒绝",
            "您的访问被阻断",
            "web应用防火墙",
            "网站防火墙",
            "请开启javascript",
            "请启用javascript",
            "您的请求带有不合法参数",
            "当前访问疑似黑客攻击",
            "非法访问",
        ),
    ),
    ChallengeRule(
        "blocked:403",
        "http-403",
        "HTTP 403 Forbidden",
        statuses=frozenset({403}),
        check=lambda p: True,
        fetch_error=False,
    ),
)


# Every marker of every row (strong and weak), for _Page.has's first scan. Markers are lower case
# (they are looked for in the lower-cased page), so a row with an upper-case one is a bug.
_MARKERS = sorted({m for rule in RULES for m in (*rule.strong, *rule.markers)}, key=len, reverse=True)
assert all(m == m.lower() for m in _MARKERS), "challenge markers must be lower case"
_ANY_MARKER = re.compile("|".join(map(re.escape, _MARKERS))) if _MARKERS else None


@dataclass(frozen=True)
class ChallengeMatch:
    """A response recognised as a challenge or block page: the row, and the status it came with."""

    rule: ChallengeRule
    status: int

    @property
    def tag(self) -> str:
        return self.rule.tag

    @property
    def vendor(self) -> str:
        return self.rule.vendor

    @property
    def reason(self) -> str:
        # The prefix is what earlier reasons began with (tests and logs read it); the tag follows.
        return f"anti-bot challenge page (HTTP {self.status}): {self.rule.tag} ({self.rule.description})"


def classify_challenge(
    status: int, headers: Mapping[str, str], text: str, *, include_plain: bool = True
) -> ChallengeMatch | None:
    """The first row of `RULES` the response matches, else None. `include_plain=False` skips the
    rows the default Fetcher reports in its own words (a plain 403)."""
    page = _Page(status, headers, text)
    for rule in RULES:
        if not include_plain and not rule.fetch_error:
            continue
        if rule.matches(page):
            return ChallengeMatch(rule, status)
    return None


def detect_challenge(status: int, headers: Mapping[str, str], text: str) -> str | None:
    """A reason string when the response is an anti-bot challenge or firewall page, else None.

    The reason is `anti-bot challenge page (HTTP <status>): <tag> (<what>)`, the tag naming the
    vendor or kind (`challenge:jiasule`, `challenge:rivers`, `challenge:aliyun-waf`, `blocked:ip`,
    ...: see RULES). Markers that a genuine page could contain (a cookie-setting script, the word
    防火墙, a CDN's cookie) only count on a page with almost no visible text, or on an error
    status, so a long policy page with a cookie script is not flagged.
    """
    match = classify_challenge(status, headers, text, include_plain=False)
    return match.reason if match is not None else None


def challenge_tag(reason: str | None) -> str | None:
    """The tag (`challenge:jiasule`, `blocked:ip`, ...) a fetch error's reason names, else None."""
    if not reason:
        return None
    m = _TAG_IN_REASON_RE.search(reason)
    return m.group(1) if m else None


def rule_for(tag: str) -> ChallengeRule | None:
    """The first row with `tag`."""
    return next((rule for rule in RULES if rule.tag == tag), None)
