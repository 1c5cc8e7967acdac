"""Recognising anti-bot challenge and web-application-firewall pages (never policy content)."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping

_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
_SCRIPT_RE = re.compile(r"<(script|style|noscript)\b[^>]*>(.*?)</\1\s*>", re.S | re.I)
_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_LOCATION_RE = re.compile(r"location(?:\.href|\.replace|\.reload|\.assign|\s*=)", re.I)

# Pages this short (visible characters) are treated as "almost no text": a policy page has far more.
SMALL_PAGE_CHARS = 600
# Markers that name a challenge mechanism outright; no real page shows them.
_STRONG = (
    ("__jsl_clearance", "Jiasule/加速乐 __jsl_clearance cookie challenge"),
    ("_cf_chl_opt", "Cloudflare challenge"),
    ("cf-chl-bypass", "Cloudflare challenge"),
    # WZWS (网站卫士), seen in place of a www.pbc.gov.cn article: a packed script sets the cookie.
    ("wzwschallenge", "WZWS/网站卫士 JavaScript cookie challenge"),
    ("wzwstemplate", "WZWS/网站卫士 JavaScript cookie challenge"),
)
# Markers a real page might carry (an injected script, a sentence about firewalls): they count only
# on a small page or an error status.
_WEAK = (
    ("cf-chl", "Cloudflare challenge"),
    ("just a moment...", "Cloudflare 'Just a moment...' interstitial"),
    ("checking your browser", "browser check interstitial"),
    ("访问受限", "访问受限 (access restricted) block page"),
    ("访问被拒绝", "访问被拒绝 (access denied) block page"),
    ("您的访问被阻断", "您的访问被阻断 (access blocked) firewall page"),
    ("web应用防火墙", "Web应用防火墙 (WAF) block page"),
    ("网站防火墙", "网站防火墙 (site firewall) block page"),
    ("安全狗", "安全狗 (SafeDog) WAF page"),
    ("请开启javascript", "请开启JavaScript (enable JavaScript) challenge"),
    ("请启用javascript", "请启用JavaScript (enable JavaScript) challenge"),
    ("您的请求带有不合法参数", "WAF block page (illegal request parameters)"),
    ("当前访问疑似黑客攻击", "WAF block page (suspected attack)"),
    ("非法访问", "非法访问 (illegal access) block page"),
)


def visible_text(html: str) -> str:
    """The text a reader would see: no comments, scripts, styles or tags, whitespace collapsed."""
    text = _COMMENT_RE.sub(" ", html)
    text = _SCRIPT_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", html_lib.unescape(text)).strip()


def _script_chars(html: str) -> int:
    return sum(len(m.group(2)) for m in _SCRIPT_RE.finditer(html) if m.group(1).lower() == "script")


def detect_challenge(status: int, headers: Mapping[str, str], text: str) -> str | None:
    """A reason string when the response is an anti-bot challenge or firewall page, else None.

    Flags Rivers/瑞数 ($_ts), Jiasule/加速乐 (__jsl_clearance, JS cookie + reload on 521),
    Cloudflare and WAF block pages (访问受限, 安全狗, ...). Markers that a genuine page could contain
    (a cookie-setting script, the word 防火墙) only count on a page with almost no visible text, or
    on an error status, so a long policy page with a cookie script is not flagged.
    """
    text = text or ""
    lower = text.lower()
    hdrs = {k.lower(): v for k, v in headers.items()}
    prefix = f"anti-bot challenge page (HTTP {status})"
    error_status = status >= 400 or status == 202
    # The visible text (four regex passes over the page) only when a marker asks for it: almost
    # every policy page has none, and this runs on every page fetched.
    visible_chars: list[int] = []

    def visible_len() -> int:
        if not visible_chars:
            visible_chars.append(len(visible_text(text)))
        return visible_chars[0]

    def small() -> bool:
        return visible_len() < SMALL_PAGE_CHARS

    if hdrs.get("cf-mitigated", "").lower() == "challenge":
        return f"{prefix}: Cloudflare challenge (cf-mitigated header)"
    if "$_ts" in text and (error_status or small()):
        return f"{prefix}: Rivers/瑞数 $_ts script challenge"
    if status == 412:
        # GET without If-Match never legitimately ends in 412: it is Rivers/瑞数' first-visit answer.
        return prefix
    for marker, what in _STRONG:
        if marker in lower:
            return f"{prefix}: {what}"
    if "document.cookie" in lower and _LOCATION_RE.search(text):
        scripts = _script_chars(text)
        if visible_len() < 200 and (status == 521 or scripts >= visible_len()):
            return f"{prefix}: JavaScript cookie challenge (sets document.cookie and reloads)"
    weak = [(marker, what) for marker, what in _WEAK if marker in lower]
    if weak and (error_status or small()):
        return f"{prefix}: {weak[0][1]}"
    return None
