"""`policywatch reextract`: a store built by the previous extractor, upgraded and re-read.

The fixture store (tests/fixtures/stores/pre-reextract.sqlite) was made by the code before extractor
revisions (commit a07cac0, extractor revision 1) running its own cycles: scripts/make-old-store.py
regenerates it and documents what it holds. Each test copies it, serves the same page bytes on a
port of its own (the manifest's sha256 are checked), and rewrites the stored URLs to that port.

Which assertions depend on the current extractor reading those pages differently from revision 1
(true when this was written, at EXTRACTOR_REVISION "2"): they are marked EXTRACTOR-DEPENDENT. Every
other expectation is computed from what the current extractor reads in the stored raw pages, so it
holds whatever extraction becomes.

PostgreSQL: the fixture is a SQLite file, so the tests on both databases build their "old" versions
by hand: a store written by the current code whose versions are then altered to look read by an
older extractor (extractor_revision '1', a footer line added to the text, a paragraph dropped, a
title suffix). That is a SIMULATION of an old store, labelled as such below.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from policywatch.cli import as_published
from policywatch.config import Config, parse_config
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.extraction import EXTRACTOR_REVISION, content_hash, normalise_paragraphs
from policywatch.pipeline import run_cycle
from policywatch.reextract import reextract, unpack_text
from policywatch.search import search_documents
from storage.db import current_revisions, head_revisions, make_engine, session_factory
from storage.models import ChangeEvent, Document, DocumentVersion, MinhashBand, VersionReextraction
from storage.store import load_raw
from tests.support.site import LocalSite

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "tests" / "fixtures" / "stores" / "pre-reextract.sqlite"
MANIFEST = json.loads(STORE.with_suffix(".json").read_text(encoding="utf-8"))

# Real pages on which extractor revision 2 reads something else than revision 1 did.
# EXTRACTOR-DEPENDENT: ndrc-1283 (a trailing "排行榜" sidebar line), nfj-nea-2026-33 (the site
# footer), gd-drc-2026-290 ("相关导读" / "打印文档 关闭窗口"), nea-2026-0916-xinchou (metadata lines).
CHANGED_BY_THE_EXTRACTOR = {
    "/real/ndrc-1283.html",
    "/real/nfj-nea-2026-33.html",
    "/real/gd-drc-2026-290.html",
    "/real/nea-2026-0916-xinchou.html",
}
# Hand-written demo pages: every extractor reads them the same (the controls).
DEMO_PAGES = {"/demo/plan.html", "/demo/province.html"}


def policywatch(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policywatch.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _config_yaml(sources: list[dict[str, Any]], base_url: str) -> str:
    lines = ["sources:"]
    for source in sources:
        lines += [f"  - id: {source['id']}", f"    name: {source['name']}", "    pages:"]
        lines += [f'      - "{base_url}{path}"' for path in source["pages"]]
        lines += ["    min_delay_s: 0"]
    lines += ["settings:", "  max_attempts: 2", "  backoff_base_s: 0.01", "  read_timeout_s: 10"]
    return "\n".join(lines) + "\n"


# --- the fixture store, served again ------------------------------------------------------------------


def _rewrite_urls(db: Path, old_base: str, new_base: str) -> None:
    """Every stored URL points at this test's server: each text column of each table (not the
    full-text index's, not the versions' texts, which hold no URL: checked)."""
    conn = sqlite3.connect(db)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith(("document_search", "sqlite_"))
        ]
        for table in tables:
            for _, column, kind, *_ in conn.execute(f"PRAGMA table_info({table})").fetchall():
                if "CHAR" not in kind.upper() and "TEXT" not in kind.upper() and kind.upper() != "JSON":
                    continue
                where = f"WHERE {column} LIKE '%' || ? || '%'"
                if table == "document_versions" and column in ("title", "text", "normalized_text"):
                    assert (
                        conn.execute(f"SELECT count(*) FROM {table} {where}", (old_base,)).fetchone()[0] == 0
                    )
                    continue
                conn.execute(
                    f"UPDATE {table} SET {column} = replace({column}, ?, ?) {where}",
                    (old_base, new_base, old_base),
                )
        conn.commit()
    finally:
        conn.close()


@dataclass
class OldStore:
    site: LocalSite
    tmp: Path
    db: Path

    def __post_init__(self) -> None:
        self.url = f"sqlite:///{self.db}"
        self.config_path = self.tmp / "sources.yaml"
        self.config_path.write_text(_config_yaml(MANIFEST["sources"], self.site.base_url), encoding="utf-8")
        self.config: Config = parse_config(self.config_path.read_text(encoding="utf-8"))
        self.env = {"POLICYWATCH_DATABASE_URL": self.url, "POLICYWATCH_CONFIG": str(self.config_path)}
        self.engine = make_engine(self.url)
        self.sessions = session_factory(self.engine)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return policywatch(*args, env=self.env, cwd=self.tmp)

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def doc_id(self, path: str) -> int:
        with self.sessions() as s:
            doc_id = s.scalar(select(Document.id).where(Document.url == self.site.url(path)))
        assert doc_id is not None, path
        return doc_id

    def path_of(self, document_id: int) -> str:
        with self.sessions() as s:
            url = s.scalar(select(Document.url).where(Document.id == document_id))
        assert url is not None
        return url.removeprefix(self.site.base_url)

    def versions(self) -> dict[int, DocumentVersion]:
        with self.sessions() as s:
            return {v.id: v for v in s.scalars(select(DocumentVersion).order_by(DocumentVersion.id))}

    def current(self, path: str) -> DocumentVersion:
        with self.sessions() as s:
            doc = s.get(Document, self.doc_id(path))
            assert doc is not None and doc.current_version_id is not None
            version = s.get(DocumentVersion, doc.current_version_id)
            assert version is not None
            return version

    def reading(self, version: DocumentVersion) -> Any:
        """What the current extractor reads in the version's stored raw page."""
        from policywatch.extraction.document import extract_document

        with self.sessions() as s:
            assert version.raw_sha256 is not None
            html = load_raw(s, version.raw_sha256)
        assert html is not None
        return extract_document(html, version.url, None)

    def count(self, model: Any) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0

    def event_documents(self, kind: str) -> set[str]:
        with self.sessions() as s:
            ids = s.scalars(select(ChangeEvent.document_id).where(ChangeEvent.kind == kind)).all()
        return {self.path_of(i) for i in ids}


@pytest.fixture
def old_store(site: LocalSite, tmp_path: Path) -> Iterator[OldStore]:
    for path, page in MANIFEST["pages"].items():
        data = (ROOT / page["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == page["sha256"], (
            f"{page['file']} is not what the store read"
        )
        site.put(path, data, content_type=page["content_type"])
    db = tmp_path / "store.db"
    shutil.copyfile(STORE, db)
    _rewrite_urls(db, MANIFEST["base_url"], site.base_url)
    store = OldStore(site, tmp_path, db)
    yield store
    store.engine.dispose()


def _upgraded(store: OldStore) -> None:
    result = store.cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert current_revisions(store.engine) == head_revisions()


def _fts_is_consistent(store: OldStore) -> None:
    """FTS5's own check of an external-content index against document_versions (rank 1: compare
    with the content table): a stale entry, or a missing one, fails it."""
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO document_search(document_search, rank) VALUES ('integrity-check', 1)"))


# --- the fixture itself ---------------------------------------------------------------------------------


def test_the_fixture_store_was_made_by_the_previous_code(old_store: OldStore) -> None:
    assert MANIFEST["old_commit"].startswith("a07cac0")
    assert current_revisions(old_store.engine) == set(MANIFEST["alembic_revisions"])
    with sqlite3.connect(old_store.db) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(document_versions)")}
    assert "extractor_revision" not in columns
    # Two cycles of the old code: a baseline, then two second versions (a real change on the demo
    # plan, and the nfj footer that extractor 1 read as text) with their `changed` events.
    assert [c["baseline"] for c in MANIFEST["cycles"]] == [8, 0]
    assert old_store.event_documents("changed") == {"/demo/plan.html", "/real/nfj-nea-2026-33.html"}

    _upgraded(old_store)
    versions = old_store.versions()
    assert len(versions) == 10
    assert {v.extractor_revision for v in versions.values()} == {"1"}
    _fts_is_consistent(old_store)


# --- (a) without reextract ----------------------------------------------------------------------------


def test_without_reextract_a_cycle_rereads_old_versions_and_reports_nothing(old_store: OldStore) -> None:
    """An operator who upgrades and runs a cycle before `reextract`: the version stage re-reads each
    current version of an older extractor from its stored page before comparing (policywatch.reextract
    .refresh_current_version), so what only the extractor changed is still not a change."""
    _upgraded(old_store)
    expected = {
        path
        for path in MANIFEST["pages"]
        if old_store.reading(current := old_store.current(path)).content_hash != current.content_hash
    }
    assert expected >= CHANGED_BY_THE_EXTRACTOR  # EXTRACTOR-DEPENDENT: without the re-read, changes
    assert not expected & DEMO_PAGES  # EXTRACTOR-DEPENDENT (the controls: hand-written pages)
    events_before, versions_before = old_store.count(ChangeEvent), old_store.count(DocumentVersion)

    summary = old_store.cli_json("run")
    assert summary["errors"] == 0, summary["failures"]
    assert (summary["new"], summary["changed"], summary["removed"]) == (0, 0, 0)
    assert old_store.count(ChangeEvent) == events_before
    assert old_store.count(DocumentVersion) == versions_before
    for path in expected:  # re-read in place, with the old text kept
        current = old_store.current(path)
        assert current.extractor_revision == EXTRACTOR_REVISION
        assert old_store.reading(current).content_hash == current.content_hash
    assert old_store.count(VersionReextraction) >= len(expected)


# --- (b) reextract, then the same cycle -----------------------------------------------------------------


def test_reextract_then_a_cycle_of_unchanged_pages_yields_no_events(old_store: OldStore) -> None:
    """The acceptance: a store created before this change, upgraded and re-extracted, yields no
    events on the next cycle of unchanged pages."""
    _upgraded(old_store)
    before = old_store.versions()
    readings = {vid: old_store.reading(v) for vid, v in before.items()}
    will_change = {
        vid
        for vid, v in before.items()
        if (
            readings[vid].title,
            "\n".join(readings[vid].paragraphs),
            "\n".join(readings[vid].normalised_paragraphs),
            readings[vid].doc_number,
            readings[vid].published_at,
            readings[vid].issuer,
            readings[vid].method,
        )
        != (v.title, v.text, v.normalized_text, v.doc_number, v.published_at, v.issuer, v.extraction_method)
    }
    events_before = old_store.count(ChangeEvent)

    report = old_store.cli_json("reextract")
    assert set(report) >= {"versions_checked", "rewritten", "unchanged", "skipped", "failures"}
    assert report["versions_checked"] == len(before) == 10
    assert (report["skipped"], report["failures"]) == (0, [])
    assert report["rewritten"] == len(will_change)
    assert report["unchanged"] == len(before) - len(will_change)
    changed_paths = {old_store.path_of(before[vid].document_id) for vid in will_change}
    assert changed_paths >= CHANGED_BY_THE_EXTRACTOR  # EXTRACTOR-DEPENDENT
    # miit-2013-bitcoin: same text, but revision 2 reads its 发文字号 and date (EXTRACTOR-DEPENDENT).
    assert "/real/miit-2013-bitcoin.html" in changed_paths
    assert old_store.count(ChangeEvent) == events_before  # reextract makes no event

    after = old_store.versions()
    assert {v.extractor_revision for v in after.values()} == {EXTRACTOR_REVISION}
    for vid, version in after.items():
        reading = readings[vid]
        assert version.content_hash == reading.content_hash
        assert version.text == "\n".join(reading.paragraphs)
        assert version.normalized_text == "\n".join(reading.normalised_paragraphs)
        assert (version.title, version.doc_number, version.published_at) == (
            reading.title,
            reading.doc_number,
            reading.published_at,
        )
        assert version.first_seen_at == before[vid].first_seen_at  # history dates are kept
    # The old texts are kept, one history row per rewritten version.
    with old_store.sessions() as s:
        rows = s.scalars(select(VersionReextraction).order_by(VersionReextraction.id)).all()
        assert {r.version_id for r in rows} == will_change and len(rows) == len(will_change)
        for row in rows:
            old = before[row.version_id]
            assert (row.from_revision, row.to_revision) == ("1", EXTRACTOR_REVISION)
            assert row.old_content_hash == old.content_hash
            assert row.new_content_hash == after[row.version_id].content_hash
            assert unpack_text(row.old_text) == old.text
            assert unpack_text(row.old_normalized_text) == old.normalized_text
            assert (row.old_title, row.old_doc_number, row.old_published_at) == (
                old.title,
                old.doc_number,
                old.published_at,
            )
        # Documents: title and number from the current version, fingerprints cleared.
        for doc in s.scalars(select(Document)):
            current = after[doc.current_version_id]
            assert doc.title == current.title and doc.page_fingerprint is None
            if current.doc_number:
                assert doc.doc_number == current.doc_number
        # The MinHash bands of rewritten texts are those of the new texts.
        from policywatch.reposts import band_keys, signature

        for vid in will_change:
            stored = set(s.scalars(select(MinhashBand.band_key).where(MinhashBand.version_id == vid)))
            if stored:
                assert stored == set(band_keys(signature(after[vid].normalized_text)))
    _fts_is_consistent(old_store)

    # nfj-nea-2026-33: its two versions differed only by the footer extractor 1 read as text. Both
    # are kept, and listed (EXTRACTOR-DEPENDENT: revision 2 leaves the footer out).
    nfj = old_store.doc_id("/real/nfj-nea-2026-33.html")
    nfj_versions = sorted(vid for vid, v in after.items() if v.document_id == nfj)
    assert len(nfj_versions) == 2
    assert after[nfj_versions[0]].content_hash == after[nfj_versions[1]].content_hash
    assert {
        "document_id": nfj,
        "previous_version_id": nfj_versions[0],
        "version_id": nfj_versions[1],
    } in report["same_as_previous"]
    plan = old_store.doc_id("/demo/plan.html")
    assert all(pair["document_id"] != plan for pair in report["same_as_previous"])  # a real change stays one

    # The next cycle over the same unchanged pages: nothing new, nothing changed, no new version.
    summary = old_store.cli_json("run")
    assert summary["errors"] == 0, summary["failures"]
    assert summary["fetched"] == 8 and summary["unchanged"] == 8  # each page read in full once
    for kind in ("new", "changed", "removed", "restored", "republished"):
        assert summary[kind] == 0, (kind, summary)
    assert old_store.count(ChangeEvent) == events_before
    assert set(old_store.versions()) == set(before)
    with old_store.sessions() as s:
        assert all(d.page_fingerprint for d in s.scalars(select(Document)))  # the fast path is back
    again = old_store.cli_json("run")
    assert (again["changed"], again["new"], again["unchanged"]) == (0, 0, 8)

    # history shows each version's extractor revision; show prints the new text as published.
    ndrc = old_store.current("/real/ndrc-1283.html")
    history = old_store.cli_json("history", str(ndrc.document_id))
    assert [v["extractor_revision"] for v in history["versions"]] == [EXTRACTOR_REVISION]
    shown = old_store.cli("show", str(ndrc.id))
    assert shown.returncode == 0, shown.stderr
    reading = old_store.reading(ndrc)
    expected_lines = [as_published(reading.title), "", *filter(None, map(as_published, reading.paragraphs))]
    assert shown.stdout.splitlines() == expected_lines
    old_only = [p for p in before[ndrc.id].text.split("\n") if p not in reading.paragraphs]
    assert old_only  # EXTRACTOR-DEPENDENT: "排行榜", a sidebar heading extractor 1 kept
    assert not any(p in shown.stdout.splitlines() for p in old_only)
    plain = old_store.cli("history", str(ndrc.document_id))
    assert f"x{EXTRACTOR_REVISION}" in plain.stdout


def test_reextract_is_idempotent(old_store: OldStore) -> None:
    _upgraded(old_store)
    first = reextract(old_store.config, old_store.engine)
    assert first.versions_checked == 10 and first.skipped == 0
    snapshot = {
        vid: (v.content_hash, v.text, v.extractor_revision) for vid, v in old_store.versions().items()
    }
    history_rows = old_store.count(VersionReextraction)

    second = reextract(old_store.config, old_store.engine)
    assert (second.versions_checked, second.rewritten, second.unchanged, second.skipped) == (0, 0, 0, 0)
    assert second.same_as_previous == [] and second.failures == []
    plain = old_store.cli("reextract")
    assert plain.returncode == 0 and plain.stdout.startswith("0 version(s) checked"), plain
    assert len(plain.stdout.strip().splitlines()) == 1
    # --all reads every version again: all of them read as they are now.
    everything = old_store.cli_json("reextract", "--all")
    assert (everything["versions_checked"], everything["rewritten"], everything["unchanged"]) == (10, 0, 10)
    assert {
        vid: (v.content_hash, v.text, v.extractor_revision) for vid, v in old_store.versions().items()
    } == snapshot
    assert old_store.count(VersionReextraction) == history_rows


def test_reextract_of_one_source_leaves_the_others(old_store: OldStore) -> None:
    _upgraded(old_store)
    demo_docs = {old_store.doc_id(p) for p in DEMO_PAGES}
    before = old_store.versions()
    rereads = {
        vid: old_store.reading(v).content_hash == v.content_hash
        for vid, v in before.items()
        if v.document_id in demo_docs
    }
    report = old_store.cli_json("reextract", "--source", "demo")
    assert report["versions_checked"] == len(rereads) == 3  # plan (2 versions) and province
    for version in old_store.versions().values():
        expected = EXTRACTOR_REVISION if version.document_id in demo_docs else "1"
        assert version.extractor_revision == expected
        if version.document_id not in demo_docs:
            assert version.text == before[version.id].text
    assert report["rewritten"] + report["unchanged"] == 3 and report["skipped"] == 0
    assert report["rewritten"] >= sum(not same for same in rereads.values())

    unknown = old_store.cli("reextract", "--source", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    rest = old_store.cli_json("reextract", "--source", "real", "--source", "demo")
    assert rest["versions_checked"] == 7


def test_a_version_without_its_raw_page_is_skipped_and_left_untouched(old_store: OldStore) -> None:
    _upgraded(old_store)
    ndrc = old_store.current("/real/ndrc-1283.html")
    province = old_store.current("/demo/province.html")
    with sqlite3.connect(old_store.db) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")  # a raw page lost (pruned by hand, a partial restore)
        conn.execute("DELETE FROM raw_pages WHERE sha256 = ?", (ndrc.raw_sha256,))
        conn.execute("UPDATE document_versions SET raw_sha256 = NULL WHERE id = ?", (province.id,))
    conn.close()

    report = old_store.cli_json("reextract")
    assert (report["versions_checked"], report["skipped"]) == (10, 2)
    reasons = {f["version_id"]: f["reason"] for f in report["failures"]}
    assert set(reasons) == {ndrc.id, province.id}
    assert "missing" in reasons[ndrc.id] and "no raw page" in reasons[province.id]
    assert all(f["source"] and f["url"] and f["document_id"] for f in report["failures"])
    after = old_store.versions()
    for untouched in (ndrc, province):
        version = after[untouched.id]
        assert (version.extractor_revision, version.text, version.content_hash) == (
            "1",
            untouched.text,
            untouched.content_hash,
        )
    assert {v.extractor_revision for vid, v in after.items() if vid not in reasons} == {EXTRACTOR_REVISION}
    with old_store.sessions() as s:
        assert s.scalar(select(Document.title).where(Document.id == ndrc.document_id)) == ndrc.title

    again = old_store.cli_json("reextract")  # they are tried again, and skipped again
    assert (again["versions_checked"], again["skipped"], again["rewritten"]) == (2, 2, 0)
    plain = old_store.cli("reextract")
    assert plain.returncode == 0 and "2 skipped" in plain.stdout.splitlines()[0]
    assert f"skipped version {ndrc.id}" in plain.stdout


def test_search_finds_the_new_text_and_not_what_only_the_old_extraction_had(old_store: OldStore) -> None:
    _upgraded(old_store)
    currents = {path: old_store.current(path) for path in MANIFEST["pages"]}
    readings = {path: old_store.reading(v) for path, v in currents.items()}
    new_texts = "\n".join("\n".join([r.title, *r.normalised_paragraphs]) for r in readings.values())
    # Paragraphs only the old extraction of a current version had (in no current text after it).
    old_only = {
        path: [p for p in v.normalized_text.split("\n") if len(p) >= 3 and p not in new_texts]
        for path, v in currents.items()
    }
    old_only = {path: paras for path, paras in old_only.items() if paras}
    assert set(old_only) >= {"/real/ndrc-1283.html", "/real/nfj-nea-2026-33.html"}  # EXTRACTOR-DEPENDENT
    # ...and paragraphs only the new one has.
    old_texts = "\n".join(v.normalized_text for v in currents.values())
    new_only = {
        path: [p for p in r.normalised_paragraphs if len(p) >= 3 and p not in old_texts]
        for path, r in readings.items()
    }
    new_only = {path: paras for path, paras in new_only.items() if paras}

    def found(needle: str) -> set[int]:
        with old_store.sessions() as s:
            return {hit["document_id"] for hit in search_documents(s, needle[:40])}

    for path, paras in old_only.items():
        assert currents[path].document_id in found(paras[0]), (path, paras[0])
    old_store.cli_json("reextract")
    for path, paras in old_only.items():
        assert found(paras[0]) == set(), (path, paras[0])
    for path, paras in new_only.items():
        assert currents[path].document_id in found(paras[0]), (path, paras[0])
    for path, reading in readings.items():
        some = next(p for p in reading.normalised_paragraphs if len(p) >= 8)
        assert currents[path].document_id in found(some), (path, some)
    _fts_is_consistent(old_store)
    hits = old_store.cli_json("search", old_only["/real/ndrc-1283.html"][0])
    assert hits == []


# --- both databases: a SIMULATED old store ---------------------------------------------------------------

TITLE = "关于印发“十四五”数字经济发展规划的通知"
PARAS = corpus_paragraphs("004")[1:25]
# What the simulated older extractor read as text besides the body: a footer line.
OLD_FOOTER = "旧抽取器误收的页脚 版权所有 仿冒标记"
OLD_TITLE_SUFFIX = "_国务院文件_中国政府网"


@dataclass
class SimWorld:
    site: LocalSite
    url: str

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)
        self.sessions = session_factory(self.engine)
        self.config = parse_config(
            f"""
sources:
  - id: sim
    name: 仿真
    listing_urls: ["{self.site.url("/list/")}"]
    link_pattern: "/content/"
    min_delay_s: 0
settings:
  backoff_base_s: 0.01
  max_attempts: 2
"""
        )
        links = "".join(f'<li><a href="/content/{i}.html">文件{i}</a></li>' for i in range(3))
        self.site.put("/list/", f"<html><body><ul>{links}</ul></body></html>")
        for i in range(3):
            paras = PARAS[i * 8 : (i + 1) * 8]
            self.site.put(f"/content/{i}.html", gov_cn_page(f"{TITLE}（{i}）", paras, counter=i))

    def simulate_old_extractor(self) -> dict[int, str]:
        """SIMULATION of versions read by an older extractor: each current version gets a footer
        line, loses its first paragraph and gets a title suffix, with the content hash of that
        text, and extractor_revision '1'; fingerprints are cleared (an older extractor's never
        match). Returns version id -> the dropped paragraph (text only the new reading has)."""
        dropped: dict[int, str] = {}
        with self.sessions.begin() as s:
            for v in s.scalars(select(DocumentVersion)):
                paragraphs = v.text.split("\n")
                dropped[v.id] = paragraphs[0]
                old_paragraphs = [*paragraphs[1:], OLD_FOOTER]
                v.title = v.title + OLD_TITLE_SUFFIX
                v.text = "\n".join(old_paragraphs)
                v.normalized_text = "\n".join(normalise_paragraphs(old_paragraphs))
                v.content_hash = content_hash(v.title, old_paragraphs)
                v.extractor_revision = "1"
            for d in s.scalars(select(Document)):
                d.title = (d.title or "") + OLD_TITLE_SUFFIX
                d.page_fingerprint = None
        return dropped

    def events(self) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(ChangeEvent)) or 0

    def versions(self) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(DocumentVersion)) or 0

    def found(self, needle: str) -> list[dict[str, Any]]:
        with self.sessions() as s:
            return search_documents(s, needle)


@pytest.fixture
def sim(site: LocalSite, db_url: str) -> Iterator[SimWorld]:
    world = SimWorld(site, db_url)
    first = run_cycle(world.config, world.engine)
    assert first.baseline == 3 and first.errors == 0, first.failures
    with world.sessions() as s:
        assert {v.extractor_revision for v in s.scalars(select(DocumentVersion))} == {EXTRACTOR_REVISION}
    yield world
    world.engine.dispose()


def test_simulated_old_versions_without_reextract_are_reread_by_the_cycle(sim: SimWorld) -> None:
    sim.simulate_old_extractor()
    summary = run_cycle(sim.config, sim.engine)
    assert (summary.changed, sim.events()) == (0, 0)  # the version stage re-read them first
    with sim.sessions() as s:
        assert {v.extractor_revision for v in s.scalars(select(DocumentVersion))} == {EXTRACTOR_REVISION}
    assert sim.found(OLD_FOOTER) == []


def test_simulated_old_versions_reextracted_then_no_events(sim: SimWorld) -> None:
    dropped = sim.simulate_old_extractor()
    assert len(sim.found(OLD_FOOTER)) == 3
    assert all(sim.found(p) == [] for p in dropped.values())

    report = reextract(sim.config, sim.engine)
    assert (report.versions_checked, report.rewritten, report.unchanged, report.skipped) == (3, 3, 0, 0)
    assert sim.events() == 0
    # Search: the new text is found, what only the old reading had is not.
    assert sim.found(OLD_FOOTER) == [] and sim.found("仿冒标记") == []
    for version_id, paragraph in dropped.items():
        assert [hit["version_id"] for hit in sim.found(paragraph)] == [version_id]
    with sim.sessions() as s:
        for v in s.scalars(select(DocumentVersion)):
            assert v.extractor_revision == EXTRACTOR_REVISION
            assert OLD_FOOTER not in v.text and not v.title.endswith(OLD_TITLE_SUFFIX)
        for d in s.scalars(select(Document)):
            assert not (d.title or "").endswith(OLD_TITLE_SUFFIX) and d.page_fingerprint is None
        rows = s.scalars(select(VersionReextraction)).all()
        assert len(rows) == 3
        assert all(
            OLD_FOOTER in unpack_text(r.old_text) and r.old_title.endswith(OLD_TITLE_SUFFIX) for r in rows
        )

    summary = run_cycle(sim.config, sim.engine)
    assert (summary.new, summary.changed, summary.removed, summary.errors) == (0, 0, 0, 0), summary.failures
    assert summary.unchanged == 3 and sim.events() == 0 and sim.versions() == 3
    again = reextract(sim.config, sim.engine)
    assert again.versions_checked == 0


def test_a_source_no_longer_configured_is_skipped(sim: SimWorld) -> None:
    sim.simulate_old_extractor()
    other = parse_config(
        f"""
sources:
  - id: other
    name: 其他
    pages: ["{sim.site.url("/content/0.html")}"]
    min_delay_s: 0
"""
    )
    report = reextract(other, sim.engine)
    assert (report.versions_checked, report.skipped, report.rewritten) == (3, 3, 0)
    assert all("not in the configuration" in f["reason"] for f in report.failures)


def test_a_source_a_cycle_holds_is_skipped(old_store: OldStore) -> None:
    from policywatch.locking import source_lock

    _upgraded(old_store)
    with source_lock(old_store.engine, "demo"):
        report = reextract(old_store.config, old_store.engine)
    assert (report.versions_checked, report.skipped) == (10, 3)
    assert {f["source"] for f in report.failures} == {"demo"}
    assert all("another cycle is running source demo" in f["reason"] for f in report.failures)
    later = reextract(old_store.config, old_store.engine)
    assert (later.versions_checked, later.skipped) == (3, 0)


def test_an_unreachable_database_exits_1_with_one_line(old_store: OldStore) -> None:
    env = {**old_store.env, "POLICYWATCH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = policywatch("reextract", env=env, cwd=old_store.tmp)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("policywatch: database error:"), result.stderr
