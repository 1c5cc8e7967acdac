"""Relevance: digital-economy policy text or not, from the configured weights, explained by its terms."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from policywatch.config import ConfigError, parse_config
from policywatch.demosite.pages import corpus_document, demo_text, gov_cn_page
from policywatch.extraction import normalise_paragraphs, normalise_text
from policywatch.pipeline import run_cycle
from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from storage.db import make_engine, session_factory
from storage.models import ChangeEvent
from tests.support.site import LocalSite


def classify(title: str, paragraphs: list[str], classifier: RelevanceClassifier = DEFAULT_CLASSIFIER):  # type: ignore[no-untyped-def]
    return classifier.classify(normalise_text(title), "\n".join(normalise_paragraphs(paragraphs)))


@pytest.mark.parametrize("name", ["000", "001", "003", "004"])
def test_the_corpus_is_relevant(name: str) -> None:
    title, paragraphs = corpus_document(name)
    result = classify(title, paragraphs)
    assert result.relevant, result.explain()
    assert "数字经济" in result.terms[:3]


def test_a_digital_economy_notice_is_relevant_by_its_body_alone() -> None:
    notice = demo_text("public_data_notice")
    result = classify("关于开展试点工作的通知", notice.paragraphs)  # a title that says nothing
    assert result.relevant and result.terms[0] == "公共数据"


@pytest.mark.parametrize("name", ["grain_storage", "school_safety", "forest_fire"])
def test_policy_texts_of_other_fields_are_not_relevant(name: str) -> None:
    text = demo_text(name)
    result = classify(text.title, text.paragraphs)
    assert not result.relevant, result.explain()


def test_incidental_generic_terms_never_decide() -> None:
    """A grain or forest-fire notice that keeps mentioning 信息化, 大数据, 物联网: no core term, not relevant."""
    paragraphs = ["推进粮库信息化建设，运用物联网和大数据手段监测粮情，提升仓储管理信息化水平。"] * 6
    result = classify("关于加强粮食仓储管理的通知", paragraphs)
    assert result.score >= DEFAULT_CLASSIFIER.threshold
    assert not result.relevant
    assert set(result.terms) == {"信息化", "物联网", "大数据"}


def test_a_core_term_in_the_title_is_enough() -> None:
    result = classify("关于印发数字经济发展规划的通知", ["现将规划印发给你们，请认真贯彻执行。"])
    assert result.relevant
    assert result.contributions == (("数字经济", 12.0),)
    assert result.explain() == "relevant (score 12: 数字经济 12)"


def test_weights_and_threshold_come_from_the_config() -> None:
    text = demo_text("public_data_notice")
    strict = parse_config(
        """
sources: [{id: s, name: s, pages: ["https://example.gov.cn/a.html"]}]
settings:
  relevance:
    threshold: 500
"""
    )
    assert strict.settings.relevance.threshold == 500
    assert not classify(text.title, text.paragraphs, strict.settings.relevance).relevant

    custom = parse_config(
        """
sources: [{id: s, name: s, pages: ["https://example.gov.cn/a.html"]}]
settings:
  relevance:
    terms: {粮食: 3.0, 仓储: 2.5}
    title_factor: 2
"""
    )
    grain = demo_text("grain_storage")
    result = classify(grain.title, grain.paragraphs, custom.settings.relevance)
    assert result.relevant and set(result.terms) == {"粮食", "仓储"}
    assert not classify(text.title, text.paragraphs, custom.settings.relevance).relevant

    extra = parse_config(
        """
sources: [{id: s, name: s, pages: ["https://example.gov.cn/a.html"]}]
settings:
  relevance:
    extra_terms: {可信数据空间: 3.0, 信息化: 0}
"""
    )
    weights = extra.settings.relevance.weights
    assert weights["可信数据空间"] == 3.0 and "信息化" not in weights and weights["数字经济"] == 3.0


@pytest.mark.parametrize(
    ("snippet", "key", "line"),
    [
        ("    threshold: lots", "settings.relevance.threshold", 5),
        ("    terms: [数字经济]", "settings.relevance.terms", 5),
        ("    terms: {数字经济: -1}", "settings.relevance.terms.数字经济", 5),
        ("    terms: {数字经济: 0}", "settings.relevance.terms", 5),
        ("    colour: red", "settings.relevance.colour", 5),
    ],
)
def test_bad_relevance_settings_name_key_and_line(snippet: str, key: str, line: int) -> None:
    text = f"""sources: [{{id: s, name: s, pages: ["https://example.gov.cn/a.html"]}}]
settings:
  first_run_alerts: false
  relevance:
{snippet}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert (info.value.key, info.value.line) == (key, line)


def test_events_carry_the_configured_decision_and_its_terms(site: LocalSite, sqlite_url: str) -> None:
    notice, grain = demo_text("public_data_notice"), demo_text("grain_storage")
    site.put("/list/", '<a href="/c/1.html">一</a>')
    site.put(
        "/c/1.html",
        gov_cn_page(grain.title, grain.paragraphs, doc_number=grain.doc_number, issuer=grain.issuer),
    )
    config_text = f"""
sources:
  - id: gov
    name: 政府网
    listing_urls: ["{site.url("/list/")}"]
    link_pattern: "/c/"
    min_delay_s: 0
settings:
  relevance:
    threshold: {{threshold}}
"""
    engine = make_engine(sqlite_url)
    run_cycle(parse_config(config_text.format(threshold=8)), engine)  # baseline
    site.put("/list/", '<a href="/c/1.html">一</a><a href="/c/2.html">二</a><a href="/c/3.html">三</a>')
    site.put("/c/2.html", gov_cn_page(notice.title, notice.paragraphs, doc_number=notice.doc_number))
    short = ["为推动数字经济健康发展，现将工作要点印发给你们，请结合实际认真落实。"]
    site.put("/c/3.html", gov_cn_page("关于印发数字经济工作要点的通知", short))
    # A high threshold in the config: the short notice no longer counts.
    run_cycle(parse_config(config_text.format(threshold=40)), engine)
    with session_factory(engine)() as session:
        events = {e.url.rsplit("/", 1)[1]: e for e in session.scalars(select(ChangeEvent))}
    engine.dispose()
    assert set(events) == {"2.html", "3.html"}
    assert events["2.html"].relevant is True
    assert events["2.html"].relevance_terms[:2] == ["公共数据", "数据资源"]
    assert events["3.html"].relevant is False  # score 15: relevant at the built-in 8, not at 40
    assert classify("关于印发数字经济工作要点的通知", short).relevant
    assert events["3.html"].relevance_terms  # still explained: the terms that counted
