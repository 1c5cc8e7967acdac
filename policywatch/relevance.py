"""Is a document digital-economy policy text? A weighted term score over title and body, explainable.

The decision carries the terms that made it, so an analyst (and the alert) can see why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Weight of one occurrence in the body; a term in the title counts TITLE_FACTOR times.
DEFAULT_TERMS: Mapping[str, float] = {
    "数字经济": 3.0,
    "数据要素": 3.0,
    "算力": 2.5,
    "人工智能": 2.5,
    "平台经济": 2.5,
    "数字化转型": 2.5,
    "工业互联网": 2.5,
    "公共数据": 2.5,
    "数据跨境": 3.0,
    "数字中国": 2.5,
    "数字政府": 2.0,
    "数字产业化": 2.5,
    "产业数字化": 2.5,
    "大数据": 2.0,
    "数据资源": 2.0,
    "数据安全": 2.0,
    "数据交易": 2.5,
    "数字技术": 1.5,
    "数字基础设施": 2.5,
    "新型基础设施": 2.0,
    "云计算": 1.5,
    "区块链": 1.5,
    "5G": 1.0,
    "物联网": 1.5,
    "电子商务": 1.5,
    "数字商务": 2.0,
    "智能制造": 1.5,
    "信息化": 1.0,
}
TITLE_FACTOR = 4.0
MAX_COUNT_PER_TERM = 5  # a long text repeating one word should not outweigh several distinct terms
DEFAULT_THRESHOLD = 8.0


@dataclass(frozen=True)
class Relevance:
    relevant: bool
    score: float
    terms: tuple[str, ...]  # the terms that contributed, strongest first


def classify_relevance(
    title: str,
    text: str,
    terms: Mapping[str, float] = DEFAULT_TERMS,
    threshold: float = DEFAULT_THRESHOLD,
) -> Relevance:
    contributions: dict[str, float] = {}
    for term, weight in terms.items():
        in_title = title.count(term)
        in_body = min(text.count(term), MAX_COUNT_PER_TERM)
        score = weight * (TITLE_FACTOR * min(in_title, 1) + in_body)
        if score:
            contributions[term] = score
    total = sum(contributions.values())
    ranked = tuple(sorted(contributions, key=lambda t: (-contributions[t], t)))
    return Relevance(relevant=total >= threshold, score=round(total, 2), terms=ranked)
