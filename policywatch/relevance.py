"""Is a document digital-economy policy text? A weighted term score over title and body, explainable.

Each term has a weight. A term in the title counts `title_factor` times its weight (once), each
occurrence in the body counts its weight (at most `max_count` occurrences, so a long text repeating
one word does not outweigh several distinct terms). The document is relevant when the score reaches
`threshold` and at least one *core* term (weight >= `core_weight`) is present: incidental mentions of
generic words (信息化, 5G, 物联网 in a forest-fire notice) never decide on their own.

The weights and the threshold come from the configuration (`settings.relevance`); the decision
carries the terms that made it, strongest first, so an analyst (and the alert) can see why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Weight of one occurrence in the body. Core terms (>= 2.5) name the field itself; the lighter ones
# are words that digital-economy texts use but that other policy texts use too.
DEFAULT_TERMS: Mapping[str, float] = {
    "数字经济": 3.0,
    "数据要素": 3.0,
    "数据基础制度": 3.0,
    "数据跨境": 3.0,
    "东数西算": 3.0,
    "算力": 2.5,
    "人工智能": 2.5,
    "大模型": 2.5,
    "平台经济": 2.5,
    "数字化转型": 2.5,
    "工业互联网": 2.5,
    "公共数据": 2.5,
    "数字中国": 2.5,
    "数字产业化": 2.5,
    "产业数字化": 2.5,
    "数字基础设施": 2.5,
    "数据交易": 2.5,
    "数据流通": 2.5,
    "数据资产": 2.5,
    "数据产权": 2.5,
    "数实融合": 2.5,
    "数字政府": 2.0,
    "数字商务": 2.0,
    "数字贸易": 2.0,
    "大数据": 2.0,
    "数据资源": 2.0,
    "数据安全": 2.0,
    "数据标注": 2.0,
    "新型基础设施": 2.0,
    "数字技术": 1.5,
    "云计算": 1.5,
    "区块链": 1.5,
    "物联网": 1.5,
    "电子商务": 1.5,
    "智能制造": 1.5,
    "数字孪生": 1.5,
    "个人信息保护": 1.5,
    "网络安全": 1.0,
    "信息化": 1.0,
    "5G": 1.0,
}
DEFAULT_THRESHOLD = 8.0
DEFAULT_TITLE_FACTOR = 4.0
DEFAULT_MAX_COUNT = 5
DEFAULT_CORE_WEIGHT = 2.5


@dataclass(frozen=True)
class Relevance:
    relevant: bool
    score: float
    terms: tuple[str, ...]  # the terms that contributed, strongest first
    # (term, points) for each contributing term, strongest first: the explanation of `score`.
    contributions: tuple[tuple[str, float], ...] = ()

    def explain(self, limit: int = 8) -> str:
        """ "relevant (score 27.5: 数字经济 18, 数据要素 6, 算力 3.5)" — one line for logs and summaries."""
        verdict = "relevant" if self.relevant else "not relevant"
        parts = ", ".join(f"{term} {points:g}" for term, points in self.contributions[:limit])
        return f"{verdict} (score {self.score:g}{': ' + parts if parts else ''})"


@dataclass(frozen=True)
class RelevanceClassifier:
    """The configured classifier: weights, threshold and how title and body count."""

    terms: tuple[tuple[str, float], ...] = field(default_factory=lambda: tuple(DEFAULT_TERMS.items()))
    threshold: float = DEFAULT_THRESHOLD
    title_factor: float = DEFAULT_TITLE_FACTOR
    max_count: int = DEFAULT_MAX_COUNT
    core_weight: float = DEFAULT_CORE_WEIGHT

    @classmethod
    def from_weights(
        cls,
        weights: Mapping[str, float] | None = None,
        *,
        extra: Mapping[str, float] | None = None,
        **options: float,
    ) -> RelevanceClassifier:
        """`weights` replaces the built-in list; `extra` adds to it (a weight of 0 removes a term)."""
        merged = dict(DEFAULT_TERMS if weights is None else weights)
        merged.update(extra or {})
        terms = tuple((term, float(w)) for term, w in merged.items() if w > 0)
        return cls(terms=terms, **options)  # type: ignore[arg-type]

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.terms)

    def classify(self, title: str, text: str) -> Relevance:
        contributions: dict[str, float] = {}
        for term, weight in self.terms:
            in_title = 1 if term in title else 0
            in_body = min(text.count(term), self.max_count)
            points = weight * (self.title_factor * in_title + in_body)
            if points:
                contributions[term] = points
        total = round(sum(contributions.values()), 2)
        ranked = sorted(contributions.items(), key=lambda item: (-item[1], item[0]))
        weights = self.weights
        has_core = any(weights[term] >= self.core_weight for term in contributions)
        return Relevance(
            relevant=has_core and total >= self.threshold,
            score=total,
            terms=tuple(term for term, _ in ranked),
            contributions=tuple((term, round(points, 2)) for term, points in ranked),
        )


DEFAULT_CLASSIFIER = RelevanceClassifier()
