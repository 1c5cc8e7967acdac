"""The benchmark's policy pages: N documents of 3-60 KB built from the sample corpus.

Deterministic: document i always has the same title, style, size and text (edition 0); edition e
changes its text in substance (one sentence added to a paragraph in the middle per edition). The
visit counter is page chrome: the server fills it in per visit (COUNTER_MARK is replaced).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from demosite.pages import corpus_document, gov_cn_page, provincial_page

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


def render(spec: DocSpec, edition: int) -> bytes:
    """The page of `spec` at `edition`, encoded, with COUNTER_MARK where the visit counter goes."""
    return _render(spec, body_paragraphs(spec, edition))


def _render(spec: DocSpec, paras: list[str]) -> bytes:
    if spec.style == "gov":
        page = gov_cn_page(
            spec.title,
            paras,
            doc_number=spec.doc_number,
            issuer=spec.issuer,
            pub_date=spec.pub_date,
            counter=COUNTER_MARK,
        )
        return page.encode("utf-8")
    page = provincial_page(
        spec.title,
        paras,
        doc_number=spec.doc_number,
        issuer=spec.issuer,
        pub_date=spec.pub_date,
        counter=COUNTER_MARK,
    )
    return page.encode("gbk", "xmlcharrefreplace")


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
