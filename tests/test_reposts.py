"""Reposts: a text already known from another source is `republished`, linked, never alerted as new."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from demosite.pages import corpus_document, demo_text, gov_cn_page, news_repost_page, rss_feed
from policywatch.config import parse_config
from policywatch.pipeline import CycleSummary, run_cycle
from policywatch.reposts import band_keys, signature, similarity
from storage.db import make_engine, session_factory
from storage.models import ChangeEvent, Document, DocumentVersion, MinhashBand, OutboxMessage
from tests.support.site import LocalSite

ROOT = Path(__file__).parent.parent
NOTICE = demo_text("public_data_notice")
NEWS_TITLE = "国家数据局、国家发展改革委部署公共数据资源开发利用试点"


def to_full_width(text: str) -> str:
    return text.replace(",", "，").replace(":", "：").replace(";", "；").replace("(", "（").replace(")", "）")


def to_half_width(text: str) -> str:
    return text.replace("，", ",").replace("：", ":").replace("；", ";").replace("（", "(").replace("）", ")")


# --- the fingerprint --------------------------------------------------------------------------------


def test_near_duplicates_share_bands_and_unrelated_texts_do_not() -> None:
    text = "\n".join(NOTICE.paragraphs)
    repost = "证券时报网讯，" + text + "\n（本文来源：证券时报网）"
    other = "\n".join(demo_text("forest_fire").paragraphs)
    assert similarity(signature(text), signature(repost)) > 0.8
    assert set(band_keys(signature(text))) & set(band_keys(signature(repost)))
    assert similarity(signature(text), signature(other)) < 0.2
    assert not set(band_keys(signature(text))) & set(band_keys(signature(other)))


def test_the_fingerprint_is_the_same_in_every_process() -> None:
    """Band keys are stored: they must not depend on Python's per-process string hash seed."""
    code = (
        "import json, sys; from policywatch.reposts import band_keys, signature; "
        "print(json.dumps(band_keys(signature(sys.argv[1]))))"
    )
    text = "\n".join(NOTICE.paragraphs[:5])
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code, text],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            ).stdout
        )
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] == band_keys(signature(text))


def test_short_texts_get_a_full_signature() -> None:
    sig = signature("通知")
    assert len(sig) == 64 and len(set(sig)) > 1
    assert signature("通知") == sig


# --- through the pipeline: a government source and a news source -----------------------------------------


class Sites:
    def __init__(self, site: LocalSite, url: str) -> None:
        self.site, self.url = site, url
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        self.config = parse_config(
            f"""
sources:
  - id: gov
    name: 政府网
    listing_urls: ["{site.url("/gov/list/")}"]
    link_pattern: "/gov/content/"
    preset: gov-cn
    min_delay_s: 0
  - id: news
    name: 财经网
    listings: [{{url: "{site.url("/news/rss.xml")}", kind: rss}}]
    link_pattern: "/news/a/"
    preset: eastmoney
    min_delay_s: 0
subscribers:
  - email: analyst@example.org
    events: [new, changed, removed]
settings:
  max_attempts: 1
"""
        )

    def gov(self, *docs: tuple[str, str, list[str]]) -> None:
        self.site.put("/gov/list/", "".join(f'<a href="{path}">{title}</a>' for path, title, _ in docs))
        for path, title, paras in docs:
            self.site.put(path, gov_cn_page(title, paras, doc_number=NOTICE.doc_number, issuer="国家数据局"))

    def news(self, *items: tuple[str, str, str]) -> None:
        """items: (path, title, page html)"""
        feed = rss_feed(
            "财经", self.site.url("/news/"), [(t, self.site.url(p), "2024-09-20") for p, t, _ in items]
        )
        self.site.put("/news/rss.xml", feed, content_type="application/rss+xml")
        for path, _, page in items:
            self.site.put(path, page)

    def cycle(self) -> CycleSummary:
        summary = run_cycle(self.config, self.engine)
        assert summary.errors == 0, summary.failures
        return summary

    def events(self) -> list[ChangeEvent]:
        with self.sessions() as s:
            return list(s.scalars(select(ChangeEvent).order_by(ChangeEvent.id)))


@pytest.fixture
def sites(site: LocalSite, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sites]:
    monkeypatch.delenv("POLICYWATCH_SMTP_URL", raising=False)  # alerts stay pending
    world = Sites(site, db_url)
    yield world
    world.engine.dispose()


PLAN_TITLE, PLAN = corpus_document("004")
ARTICLE_TITLE, ARTICLE = corpus_document("001")


def baseline(sites: Sites) -> None:
    sites.gov(("/gov/content/1.html", PLAN_TITLE, PLAN[:30]))
    sites.news(("/news/a/1.html", ARTICLE_TITLE, news_repost_page(ARTICLE_TITLE, ARTICLE)))
    assert sites.cycle().baseline == 2


def publish_notice(sites: Sites) -> int:
    sites.gov(
        ("/gov/content/1.html", PLAN_TITLE, PLAN[:30]),
        ("/gov/content/2.html", NOTICE.title, NOTICE.paragraphs),
    )
    assert sites.cycle().new == 1
    [event] = sites.events()
    assert event.kind == "new" and event.relevant
    return event.document_id


def repost(sites: Sites, page: str) -> CycleSummary:
    sites.news(
        ("/news/a/2.html", NEWS_TITLE, page),
        ("/news/a/1.html", ARTICLE_TITLE, news_repost_page(ARTICLE_TITLE, ARTICLE)),
    )
    return sites.cycle()


def assert_republished(sites: Sites, original_id: int) -> None:
    kinds = [e.kind for e in sites.events()]
    assert kinds == ["new", "republished"]  # never a second "new"
    event = sites.events()[-1]
    assert event.source_id == "news" and event.original_document_id == original_id
    assert event.relevant and "公共数据" in event.relevance_terms
    with sites.sessions() as s:
        doc = s.get(Document, event.document_id)
        assert doc is not None and doc.republished_of_id == original_id
        # Not alerted: the analyst subscribed to new, changed, removed; the original's alert is queued.
        assert (
            s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.event_id == event.id)
            )
            == 0
        )
        first = sites.events()[0]
        assert (
            s.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.event_id == first.id)
            )
            == 1
        )


def test_exact_repost_in_another_source(sites: Sites) -> None:
    baseline(sites)
    original = publish_notice(sites)
    # Same text, the news site's own title, stock-keyword links injected, its chrome around.
    summary = repost(
        sites, news_repost_page(NEWS_TITLE, NOTICE.paragraphs, keyword_links=("数据要素", "公共数据"))
    )
    assert (summary.republished, summary.new) == (1, 0)
    assert_republished(sites, original)


def test_near_duplicate_repost_with_other_punctuation_whitespace_and_chrome(sites: Sites) -> None:
    baseline(sites)
    original = publish_notice(sites)
    paragraphs = [to_half_width(p) for p in NOTICE.paragraphs]
    paragraphs[0] = "证券时报网讯 " + paragraphs[0]  # a few characters of the news site's own
    paragraphs[3] = paragraphs[3].replace("。", "。\n    ")  # re-wrapped
    paragraphs.append("（本文来源：证券时报网）")
    page = news_repost_page(NEWS_TITLE, paragraphs, keyword_links=("数字经济",))
    summary = repost(sites, page)
    assert (summary.republished, summary.new) == (1, 0)
    assert_republished(sites, original)
    with sites.sessions() as s:
        texts = [v.normalized_text for v in s.scalars(select(DocumentVersion).order_by(DocumentVersion.id))]
    assert texts[-1] != texts[-2]  # not the same normalised text: a near duplicate, found by MinHash


def test_a_repost_of_an_older_document_known_from_the_baseline(sites: Sites) -> None:
    """The original was recorded in the silent baseline: its text is indexed all the same."""
    baseline(sites)
    summary = repost(
        sites, news_repost_page("江西发布数字经济发展规划", [to_full_width(p) for p in PLAN[:30]])
    )
    assert summary.republished == 1 and summary.new == 0
    [event] = sites.events()
    with sites.sessions() as s:
        original = s.scalar(select(Document).where(Document.source_id == "gov"))
        assert original is not None and event.original_document_id == original.id


def test_a_different_text_is_new(sites: Sites) -> None:
    baseline(sites)
    publish_notice(sites)
    other = demo_text("school_safety")
    summary = repost(sites, news_repost_page(other.title, other.paragraphs))
    assert summary.new == 1 and summary.republished == 0
    assert [e.kind for e in sites.events()] == ["new", "new"]
    assert sites.events()[-1].relevant is False


def test_every_version_is_indexed(sites: Sites) -> None:
    baseline(sites)
    publish_notice(sites)
    sites.gov(
        ("/gov/content/1.html", PLAN_TITLE, [p.replace("8354", "8500") for p in PLAN[:30]]),
        ("/gov/content/2.html", NOTICE.title, NOTICE.paragraphs),
    )
    assert sites.cycle().changed == 1  # a new version of a known document
    repost(sites, news_repost_page(NEWS_TITLE, NOTICE.paragraphs))  # a first version: indexes the rest
    with sites.sessions() as s:
        versions = s.scalar(select(func.count()).select_from(DocumentVersion))
        indexed = s.scalar(select(func.count(func.distinct(MinhashBand.version_id))))
    assert versions == indexed == 5
