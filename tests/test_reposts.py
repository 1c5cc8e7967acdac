"""Reposts: a text already known from another source is `republished`, linked, never alerted as new."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from policywatch.config import parse_config
from policywatch.demosite.pages import corpus_document, demo_text, gov_cn_page, news_repost_page, rss_feed
from policywatch.pipeline import CycleSummary, run_cycle
from policywatch.reposts import BINS, band_keys, body_text, signature, similarity
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
        "texts = json.load(sys.stdin); "
        "print(json.dumps([[signature(t), band_keys(signature(t))] for t in texts]))"
    )
    texts = ["\n".join(NOTICE.paragraphs[:5]), PLAN_2000, "", "通知", "数据𠀀要素🙂"]
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code],
                input=json.dumps(texts),
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            ).stdout
        )
        for seed in ("1", "2")
    ]
    here = [[list(signature(t)), band_keys(signature(t))] for t in texts]
    assert runs[0] == runs[1] == here


def test_short_texts_get_a_full_signature() -> None:
    sig = signature("通知")
    assert len(sig) == 64 and len(set(sig)) > 1
    assert signature("通知") == sig


def _first_chars(name: str, chars: int) -> str:
    """The first paragraphs of a corpus document, at least `chars` characters of them."""
    _, paragraphs = corpus_document(name)
    taken: list[str] = []
    for paragraph in paragraphs:
        taken.append(paragraph)
        if sum(map(len, taken)) >= chars:
            break
    return "\n".join(taken)


PLAN_2000 = _first_chars("003", 2000)  # the national 14th five-year digital economy plan
OLD_SENTENCE = "2020年，我国数字经济核心产业增加值占国内生产总值(GDP)比重达到7.8%，数字经济为经济社会持续健康发展提供了强大动力。"
NEW_SENTENCE = "2021年，我国数字经济规模达到45.5万亿元，占国内生产总值比重达到39.8%，数字经济在国民经济中的地位更加稳固。"


def _grams(text: str) -> set[str]:
    text = body_text(text)
    return {text[i : i + 4] for i in range(max(1, len(text) - 3))}


def _jaccard(a: str, b: str) -> float:
    grams_a, grams_b = _grams(a), _grams(b)
    return len(grams_a & grams_b) / len(grams_a | grams_b)


def test_a_changed_sentence_in_a_long_policy_text_is_a_near_duplicate() -> None:
    assert OLD_SENTENCE in PLAN_2000 and len(body_text(PLAN_2000)) >= 2000
    revised = PLAN_2000.replace(OLD_SENTENCE, NEW_SENTENCE)
    sig, revised_sig = signature(PLAN_2000), signature(revised)
    assert similarity(sig, revised_sig) >= 0.7
    assert set(band_keys(sig)) & set(band_keys(revised_sig))
    for unrelated in (_first_chars("000", 2000), _first_chars("001", 2000), _first_chars("004", 2000)):
        other = signature(unrelated)
        assert similarity(sig, other) < 0.2
        assert not set(band_keys(sig)) & set(band_keys(other))
        assert not set(band_keys(revised_sig)) & set(band_keys(other))


def test_the_estimate_follows_the_true_jaccard_similarity() -> None:
    """A weak or mis-vectorised hash (bins not uniform, grams misaligned) drifts from the 4-gram Jaccard."""
    base = PLAN_2000
    sentences = [s for s in base.split("。") if len(s) > 20]
    variants = [base.replace(OLD_SENTENCE, NEW_SENTENCE)]
    for cut in (4, 8, 14):  # drop ever more sentences: Jaccard from about 0.9 down to about 0.5
        variant = base
        for sentence in sentences[:cut]:
            variant = variant.replace(sentence, "")
        variants.append(variant)
    variants.append(_first_chars("004", 2000))
    errors = []
    for variant in variants:
        true, estimate = _jaccard(base, variant), similarity(signature(base), signature(variant))
        errors.append(abs(true - estimate))
        assert abs(true - estimate) < 0.2, (true, estimate)  # 64 bins: standard error <= 0.0625
    assert sum(errors) / len(errors) < 0.1


_M64 = (1 << 64) - 1


def _reference_gram_hash(gram: str) -> int:
    """The documented hash, one gram at a time with Python integers."""
    points = [ord(c) for c in gram] + [0x1FFFFF] * (4 - len(gram))
    h = points[0] | points[1] << 21 | points[2] << 42
    h ^= (points[3] * 0x9E3779B97F4A7C15) & _M64
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & _M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & _M64
    return h ^ (h >> 31)


@pytest.mark.parametrize(
    "text",
    [PLAN_2000, "", "通", "通知", "通知：", "ab\ncd", "数据𠀀要素🙂\ud800了", "重复重复重复重复重复重复"],
)
def test_the_vectorised_hash_is_the_per_gram_hash(text: str) -> None:
    sig = signature(text)
    assert len(sig) == BINS and all(type(v) is int and 0 <= v < 1 << 58 for v in sig)
    minima: dict[int, int] = {}
    for gram in _grams(text):
        h = _reference_gram_hash(gram)
        minima[h & 63] = min(minima.get(h & 63, 1 << 64), h >> 6)
    assert minima and all(sig[b] == value for b, value in minima.items())
    if len(minima) < BINS:  # densified: an empty bin copies the next filled one, marked with the distance
        assert len(set(sig)) == BINS


def test_the_hash_is_pinned() -> None:
    """Band keys are stored: a change of the 4-gram hash must come with a migration re-indexing
    minhash_bands (as 0005_minhash_v2 does), then these values are updated."""
    sig = signature("国家数据局关于开展公共数据资源开发利用试点工作的通知")
    assert sig[:2] == PINNED_SIGNATURE and band_keys(sig)[:2] == PINNED_KEYS


PINNED_SIGNATURE = (134323636824782562, 221925019723043300)
PINNED_KEYS = [8201886308582863644, 9153863140015364829]


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


# --- migration 0005: the bands of existing versions are recomputed with the new hash ------------------


def _migration_chunk() -> int:
    import importlib.util

    path = ROOT / "storage" / "migrations" / "versions" / "0005_minhash_v2.py"
    spec = importlib.util.spec_from_file_location("minhash_v2", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.CHUNK)


def test_migration_0005_reindexes_every_version(db_url: str) -> None:
    import sqlalchemy as sa

    from storage.db import current_revisions, head_revisions, upgrade
    from storage.models import UTCDateTime

    engine = make_engine(db_url)
    upgrade(engine, "0004_identity")  # a store as the previous release left it
    now = datetime(2026, 11, 1, tzinfo=UTC)
    when = UTCDateTime()
    sources = sa.table("sources", sa.column("id"), sa.column("name"), sa.column("created_at", when))
    documents = sa.table(
        "documents",
        *(sa.column(c) for c in ("id", "source_id", "url", "status")),
        sa.column("first_seen_at", when),
    )
    versions = sa.table(
        "document_versions",
        *(sa.column(c) for c in ("id", "document_id", "content_hash", "title", "text", "normalized_text")),
        *(sa.column(c) for c in ("chars", "url")),
        sa.column("first_seen_at", when),
        sa.column("last_seen_at", when),
    )
    bands = sa.table(
        "minhash_bands", sa.column("band_key"), sa.column("version_id"), sa.column("document_id")
    )
    # More versions than one chunk of the migration; the first two are real texts.
    texts = [PLAN_2000, "\n".join(NOTICE.paragraphs)]
    texts += [f"第{i}号通知\n请各单位于{i % 28 + 1}日前报送材料。" for i in range(_migration_chunk() + 1)]
    with engine.begin() as conn:
        conn.execute(sa.insert(sources), [{"id": "gov", "name": "政府网", "created_at": now}])
        conn.execute(
            sa.insert(documents),
            [
                {
                    "id": i,
                    "source_id": "gov",
                    "url": f"https://gov.example/{i}",
                    "status": "active",
                    "first_seen_at": now,
                }
                for i in (1, 2)
            ],
        )
        conn.execute(
            sa.insert(versions),
            [
                {
                    "id": i + 1,
                    "document_id": 1 if i == 0 else 2,
                    "content_hash": f"{i:064x}",
                    "title": "标题",
                    "text": text,
                    "normalized_text": text,
                    "chars": len(text),
                    "url": "https://gov.example/1" if i == 0 else "https://gov.example/2",
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                for i, text in enumerate(texts)
            ],
        )
        # Version 1 indexed before the upgrade: a stale key, and a key the new hash gives another
        # version (it must not stay attached to version 1). The other versions were never indexed.
        conn.execute(
            sa.insert(bands),
            [
                {"band_key": 12345, "version_id": 1, "document_id": 1},
                {"band_key": band_keys(signature(texts[1]))[0], "version_id": 1, "document_id": 1},
            ],
        )

    upgrade(engine)  # "heads", as every cycle does

    assert current_revisions(engine) == head_revisions()
    with engine.connect() as conn:
        stored: dict[int, set[tuple[int, int]]] = {}
        for key, version_id, document_id in conn.execute(sa.select(bands)):
            stored.setdefault(version_id, set()).add((key, document_id))
    expected = {
        i + 1: {(key, 1 if i == 0 else 2) for key in band_keys(signature(text))}
        for i, text in enumerate(texts)
    }
    assert stored == expected
    with session_factory(engine)() as session:  # nothing left for the pipeline's backfill
        from policywatch.reposts import backfill

        assert backfill(session) == 0
    engine.dispose()
