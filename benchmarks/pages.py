"""The benchmark's policy pages: N documents of 3-60 KB built from the sample corpus.

Deterministic: document i always has the same title, style, size and text (edition 0); edition e
changes its text in substance (one sentence added to a paragraph in the middle per edition). The
visit counter is page chrome: the server fills it in per visit (COUNTER_MARK is replaced).

Noise profiles (`NOISE_PROFILES`, `apply_noise`): what else a refetch of an unchanged page looks
like on sites nobody tuned the extractor for: link lists reordered, visit counters, rotating ads,
nonces and CSRF tokens, footer timestamps, attribute order. The markup uses neutral class names (not
the ones extraction recognises as chrome), and everything lands outside the article body, so
extraction, and urlwatch's `css:` filter, see the same text: every profile's true changes are the
same as without noise. Works on any page (the benchmark's and tests/fixtures/realpages).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from policywatch.demosite.pages import corpus_document, gov_cn_page, provincial_page

MIN_BYTES = 3 * 1024
MAX_BYTES = 60 * 1024
COUNTER_MARK = 987654321  # replaced by the visit count in every response
TOPICS = (
    "加快数字经济发展",
    "推进数据要素市场化配置",
    "加强数字政府建设",
    "促进平台经济规范健康发展",
    "推动工业互联网创新发展",
    "加快新型基础设施建设",
    "发展智能制造",
    "推进5G网络规模化部署",
)
ISSUERS = ("国务院办公厅", "江西省人民政府", "国家发展改革委", "工业和信息化部")


@cache
def paragraph_pool() -> tuple[str, ...]:
    paras: list[str] = []
    for name in ("004", "003", "000", "001"):
        paras.extend(corpus_document(name)[1])
    return tuple(paras)


@dataclass(frozen=True)
class DocSpec:
    index: int
    style: str  # "gov" (gov.cn style, UTF-8) | "provincial" (TRS style, GBK)
    title: str
    doc_number: str
    issuer: str
    pub_date: str
    target_bytes: int

    @property
    def path(self) -> str:
        return f"/content/{self.index}.html"

    @property
    def charset(self) -> str:
        return "utf-8" if self.style == "gov" else "gbk"

    @property
    def content_type(self) -> str:
        return f"text/html; charset={self.charset}"

    @property
    def selector(self) -> str:
        """The CSS selector of the body, for urlwatch's `css:` filter."""
        return "#UCAP-CONTENT" if self.style == "gov" else "div.TRS_Editor"


def doc_spec(i: int) -> DocSpec:
    rng = random.Random(i)
    # Sizes spread evenly over 3-60 KB (a fixed permutation, so any prefix of documents is spread too).
    spread = (i * 7919) % 1000 / 999
    year = 2019 + i % 6
    return DocSpec(
        index=i,
        style="provincial" if i % 3 == 2 else "gov",
        title=f"关于{TOPICS[i % len(TOPICS)]}的通知（{year}年第{i + 1}号）",
        doc_number=f"国办发〔{year}〕{i + 1}号",
        issuer=ISSUERS[i % len(ISSUERS)],
        pub_date=f"{year}-{1 + i % 12:02d}-{1 + rng.randrange(28):02d}",
        target_bytes=int(MIN_BYTES + spread * (MAX_BYTES - MIN_BYTES)),
    )


@cache
def _budget(spec: DocSpec) -> int:
    """Characters of text that make the page about `spec.target_bytes` (measured, then corrected)."""
    bytes_per_char = 3 if spec.style == "gov" else 2
    budget = max(200, (spec.target_bytes - 3000) // bytes_per_char)
    for _ in range(2):
        size = len(_render(spec, _paragraphs(spec, budget, 0)))
        budget = max(200, budget - (size - spec.target_bytes) // (bytes_per_char + 1))
    return budget


def body_paragraphs(spec: DocSpec, edition: int) -> list[str]:
    """The document's text at `edition`, sized so that the page comes out near its target size."""
    return _paragraphs(spec, _budget(spec), edition)


def _paragraphs(spec: DocSpec, budget: int, edition: int) -> list[str]:
    pool = paragraph_pool()
    start = (spec.index * 37) % len(pool)
    paras = [f"第{spec.index + 1}号文件：为{TOPICS[spec.index % len(TOPICS)]}，现就有关事项通知如下。"]
    used = len(paras[0])
    k = start
    while used < budget:
        para = pool[k % len(pool)]
        if used + len(para) > budget:
            para = para[: max(20, budget - used)]
        paras.append(para)
        used += len(para)
        k += 1
    for e in range(1, edition + 1):
        at = len(paras) // 2
        paras[at] = paras[at] + f"（第{e}次修订：各地区要在{e + 2}个月内完成数据要素登记工作。）"
    return paras


def render(spec: DocSpec, edition: int, noise: str = "baseline", rng: random.Random | None = None) -> bytes:
    """The page of `spec` at `edition`, encoded, with COUNTER_MARK where the visit counter goes and
    the `noise` profile's noise drawn from `rng`."""
    if noise == "baseline":
        return _render(spec, body_paragraphs(spec, edition))
    page = apply_noise(render_text(spec, body_paragraphs(spec, edition)), noise, rng or random.Random(0))
    return page.encode(spec.charset, "xmlcharrefreplace")


def _render(spec: DocSpec, paras: list[str]) -> bytes:
    return render_text(spec, paras).encode(spec.charset, "xmlcharrefreplace")


def render_text(spec: DocSpec, paras: list[str]) -> str:
    if spec.style == "gov":
        return gov_cn_page(
            spec.title,
            paras,
            doc_number=spec.doc_number,
            issuer=spec.issuer,
            pub_date=spec.pub_date,
            counter=COUNTER_MARK,
        )
    return provincial_page(
        spec.title,
        paras,
        doc_number=spec.doc_number,
        issuer=spec.issuer,
        pub_date=spec.pub_date,
        counter=COUNTER_MARK,
    )


# --- noise ------------------------------------------------------------------------------------------

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
_BODY_CLOSE = re.compile(r"</body\s*>", re.I)
_HEAD_CLOSE = re.compile(r"</head\s*>", re.I)
_FLAT_LIST = re.compile(r"(<(ul|ol)\b[^>]*>)((?:(?!<(?:ul|ol)\b).)*?)(</\2\s*>)", re.I | re.S)
_ITEM = re.compile(r"<li\b.*?(?=<li\b|$)", re.I | re.S)
_START_TAG = re.compile(
    r"<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=<>/\"']+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'<>]+))?)+)\s*(/?)>"
)
_ATTRIBUTE = re.compile(r"[^\s=<>/\"']+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'<>]+))?")
_SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.I | re.S)
_HEADLINES = (
    "关于进一步优化营商环境的若干措施",
    "数字经济发展统计监测工作方案",
    "关于推进政务数据共享开放的指导意见",
    "公共数据授权运营管理办法（试行）",
    "关于加快推进新型工业化的实施意见",
    "算力基础设施高质量发展行动计划",
    "关于促进人工智能产业发展的通知",
    "数据安全风险评估指南",
)
_ADS = (
    "招商引资洽谈会 报名进行中",
    "政务服务移动端上线 扫码下载",
    "数字经济博览会 门票限时领取",
    "营商环境满意度调查",
)


def _hex(rng: random.Random, n: int = 16) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _after_body_open(html: str, snippet: str) -> str:
    m = _BODY_OPEN.search(html)
    at = m.end() if m else 0
    return html[:at] + snippet + html[at:]


def _before_body_close(html: str, snippet: str) -> str:
    ends = list(_BODY_CLOSE.finditer(html))
    at = ends[-1].start() if ends else len(html)
    return html[:at] + snippet + html[at:]


def _in_head(html: str, snippet: str) -> str:
    m = _HEAD_CLOSE.search(html)
    return html[: m.start()] + snippet + html[m.start() :] if m else html


def _link_box(rng: random.Random, heading: str, base: str) -> str:
    items = [
        f'<li><a href="{base}/{i}.html">{t}</a><span>2024-0{1 + i % 9}-1{i % 9}</span></li>'
        for i, t in enumerate(_HEADLINES)
    ]
    rng.shuffle(items)
    return f'<div class="box-r"><h3>{heading}</h3><ul class="list-r">{"".join(items[:6])}</ul></div>'


def sidebars(html: str, rng: random.Random) -> str:
    """Link lists reordered: two boxes of the site's own (相关文件, 热点政策, and one whose heading says
    nothing), in a new order on every request, and the page's own link lists shuffled."""

    def shuffle(m: re.Match[str]) -> str:
        items = _ITEM.findall(m.group(3))
        if len(items) < 2 or not all("<a " in item.lower() for item in items):
            return m.group()
        head = m.group(3)[: m.group(3).lower().find("<li")]
        rng.shuffle(items)
        return m.group(1) + head + "".join(items) + m.group(4)

    html = _FLAT_LIST.sub(shuffle, html)
    html = _after_body_open(html, _link_box(rng, "相关文件", "/xgwj"))
    return _before_body_close(html, _link_box(rng, "热点政策", "/rdzc") + _link_box(rng, "政策解读", "/zcjd"))


def counters(html: str, rng: random.Random) -> str:
    """Visit counters in two places, under names extraction does not know."""
    n = rng.randrange(1000, 10**6)
    html = _after_body_open(html, f'<div class="pv-bar">本页访问人数：<b>{n}</b> 人次</div>')
    return _before_body_close(html, f'<p class="stat-num">网站总访问量：{n * 37 + rng.randrange(100)}</p>')


def ads(html: str, rng: random.Random) -> str:
    """A rotating ad block (image, link and text change per request) and a text banner."""
    k = rng.randrange(len(_ADS))
    block = f'<div class="gg-box"><a href="/promo/{rng.randrange(10**6)}"><img src="/img/ad{k}.jpg?r={_hex(rng, 6)}" alt="">{_ADS[k]}</a></div>'
    banner = f'<div class="banner-txt">{_ADS[(k + 1) % len(_ADS)]}</div>'
    return _before_body_close(_after_body_open(html, block), banner)


def nonces(html: str, rng: random.Random) -> str:
    """A CSRF token in a meta and in a search form, a script nonce and a cache-busting stylesheet."""
    token = _hex(rng, 32)
    html = _in_head(
        html,
        f'<meta name="csrf-token" content="{token}"><link rel="stylesheet" href="/css/site.css?v={_hex(rng, 8)}">',
    )
    form = (
        f'<form class="sform" action="/search" method="post"><input type="hidden" name="csrfmiddlewaretoken" '
        f'value="{token}"><input type="text" name="q" placeholder="站内搜索"><button type="submit">搜索</button></form>'
    )
    script = f'<script nonce="{_hex(rng, 12)}">var _trs_uv="{_hex(rng)}";var _ts={rng.randrange(10**9, 2 * 10**9)};</script>'
    return _before_body_close(_after_body_open(html, form), script)


def footer_time(html: str, rng: random.Random) -> str:
    """The time the CMS generated the page, in the footer."""
    stamp = f"2026-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
    return _before_body_close(
        html, f'<div class="ft-info">本页生成时间：{stamp}　技术支持：某某信息技术有限公司</div>'
    )


def attribute_order(html: str, rng: random.Random) -> str:
    """Every start tag with two or more attributes lists them in a new order (scripts left alone)."""

    def shuffle(m: re.Match[str]) -> str:
        attrs = _ATTRIBUTE.findall(m.group(2))
        if len(attrs) < 2:
            return m.group()
        rng.shuffle(attrs)
        return f"<{m.group(1)} {' '.join(attrs)}{m.group(3)}>"

    pieces, last = [], 0
    for script in _SCRIPT.finditer(html):
        pieces.append(_START_TAG.sub(shuffle, html[last : script.start()]))
        pieces.append(script.group())
        last = script.end()
    pieces.append(_START_TAG.sub(shuffle, html[last:]))
    return "".join(pieces)


def mixed(html: str, rng: random.Random) -> str:
    for noise in (sidebars, counters, ads, nonces, footer_time, attribute_order):
        html = noise(html, rng)
    return html


NOISE_PROFILES: dict[str, Callable[[str, random.Random], str]] = {
    "sidebars": sidebars,
    "counters": counters,
    "ads": ads,
    "nonces": nonces,
    "footer-time": footer_time,
    "attributes": attribute_order,
    "mixed": mixed,
}
# "baseline": only the builders' own visit counter (COUNTER_MARK), as before the profiles.
PROFILES = ("baseline", *NOISE_PROFILES)


def apply_noise(html: str, profile: str, rng: random.Random) -> str:
    """`html` as a refetch under `profile` may serve it (`rng` draws this request's noise)."""
    if profile == "baseline":
        return html
    return NOISE_PROFILES[profile](html, rng)


def listing(count: int) -> bytes:
    items = "".join(f'<li><a href="{doc_spec(i).path}">{doc_spec(i).title}</a></li>' for i in range(count))
    return f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>政策文件</title></head><body><ul>{items}</ul></body></html>'.encode()


def changed_set(count: int, fraction: float, round_no: int) -> list[int]:
    """Which documents change in substance in a round: `fraction` of them, spread over the sizes."""
    k = max(1, round(count * fraction))
    rng = random.Random(1000 + round_no)
    return sorted(rng.sample(range(count), k))


def largest_document_paragraphs(min_chars: int = 60_000) -> tuple[str, list[str]]:
    """A document of at least `min_chars` characters: the whole corpus, its sections numbered, twice
    or more (a long plan with its annexes)."""
    pool = paragraph_pool()
    paras: list[str] = []
    part = 0
    while sum(len(p) for p in paras) < min_chars:
        part += 1
        paras.append(f"附件{part}：实施细则（第{part}部分）")
        paras.extend(f"（{part}.{n}）{p}" for n, p in enumerate(pool, 1))
    return "江西省“十四五”数字经济发展规划及实施细则", paras
