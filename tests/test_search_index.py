"""The SQLite search index is filled in bulk (storage.search_index, migration 0016): a recorded
version is pending until its batch ends, a search never misses it, and the index stays consistent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, delete, text

from policywatch.search import search_documents
from storage.db import make_engine, session_factory, upgrade
from storage.models import Document, DocumentVersion, Source
from storage.search_index import PENDING_TABLE, index_pending_versions
from tests.support.site import LocalSite


def _store(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'pw.db'}")
    upgrade(engine)
    return engine


def _record(engine: Engine, bodies: list[str]) -> list[int]:
    """Versions recorded as the version stage records them (one transaction), not yet indexed."""
    now = datetime.now(UTC)
    ids = []
    with session_factory(engine).begin() as session:
        if session.get(Source, "s") is None:
            session.add(Source(id="s", name="s"))
            session.flush()
        for n, body in enumerate(bodies):
            doc = Document(
                source_id="s", url=f"http://example.org/{len(body)}-{n}", status="active", first_seen_at=now
            )
            session.add(doc)
            session.flush()
            version = DocumentVersion(
                document_id=doc.id,
                content_hash=f"h{doc.id}",
                title="规划",
                text=body,
                normalized_text=body,
                chars=len(body),
                url=doc.url,
                first_seen_at=now,
                last_seen_at=now,
            )
            session.add(version)
            session.flush()
            doc.current_version_id = version.id
            ids.append(version.id)
    return ids


def _indexed(engine: Engine, phrase: str) -> set[int]:
    """The versions the index itself holds `phrase` for (a plain SELECT of an external-content FTS5
    table reads document_versions, not the index)."""
    with engine.connect() as conn:
        query = text("SELECT rowid FROM document_search WHERE document_search MATCH :q")
        return set(conn.execute(query, {"q": f'"{phrase}"'}).scalars())


def _pending(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(text(f"SELECT version_id FROM {PENDING_TABLE}")).scalars())


def _integrity_check(engine: Engine) -> None:
    # FTS5 compares the index with document_versions (rank 1): a missing or stale entry raises.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO document_search(document_search, rank) VALUES ('integrity-check', 1)"))


def test_recorded_versions_wait_for_their_batch_then_are_indexed_at_once(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    ids = _record(
        engine, ["数字经济核心产业增加值占比达到百分之十。", "数字经济加快建设全国一体化大数据中心体系。"]
    )
    assert _pending(engine) == set(ids) and _indexed(engine, "数字经济") == set()
    assert index_pending_versions(engine) == 2
    assert _pending(engine) == set() and _indexed(engine, "数字经济") == set(ids)
    assert index_pending_versions(engine) == 0  # nothing twice
    _integrity_check(engine)
    engine.dispose()


def test_a_search_indexes_what_is_pending_first(tmp_path: Path) -> None:
    # A cycle killed after committing its versions but before indexing them: the search still finds them.
    engine = _store(tmp_path)
    [version_id] = _record(engine, ["推进数据要素市场化配置改革。"])
    with session_factory(engine)() as session:
        hits = search_documents(session, "数据要素市场")
    assert [h["version_id"] for h in hits] == [version_id]
    assert _pending(engine) == set()
    _integrity_check(engine)
    engine.dispose()


def test_deleting_a_version_before_it_was_indexed_keeps_the_index_consistent(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    indexed = _record(engine, ["第一份文件的正文内容。", "第二份文件的正文内容。"])[0]
    index_pending_versions(engine)
    [pending] = _record(engine, ["第三份文件尚未编入索引。"])
    with session_factory(engine).begin() as session:
        for version_id in (indexed, pending):
            doc = session.scalars(
                text("SELECT document_id FROM document_versions WHERE id = :id").bindparams(id=version_id)
            ).one()
            session.execute(text("UPDATE documents SET current_version_id = NULL WHERE id = :d"), {"d": doc})
            session.execute(delete(DocumentVersion).where(DocumentVersion.id == version_id))
    assert _pending(engine) == set()
    assert _indexed(engine, "文件的正文") == {indexed + 1}
    _integrity_check(engine)
    engine.dispose()


def test_a_cycle_indexes_its_versions_and_leaves_nothing_pending(tmp_path: Path, site: LocalSite) -> None:
    """The pipeline indexes each batch when it ends (policywatch.pipeline.process_targets)."""
    from policywatch.config import parse_config
    from policywatch.demosite.pages import gov_cn_page
    from policywatch.pipeline import run_cycle

    paragraphs = [
        "各地区、各部门要结合实际，认真贯彻落实数字经济发展规划。",
        "加快推进数据要素市场化配置改革。",
    ]
    links = "".join(f'<li><a href="/content/{n}.html">文件{n}</a></li>' for n in range(3))
    site.put("/list/", f"<html><body><ul>{links}</ul></body></html>")
    for n in range(3):
        site.put(
            f"/content/{n}.html", gov_cn_page(title=f"关于数字经济的通知（第{n}号）", paragraphs=paragraphs)
        )
    config = parse_config(
        f"""
sources:
  - id: demo
    name: 演示站
    listing_urls: ["{site.url("/list/")}"]
    link_pattern: "/content/"
    min_delay_s: 0
"""
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'cycle.db'}")
    summary = run_cycle(config, engine)
    assert summary.baseline == 3, summary.failures
    with engine.connect() as conn:
        versions = set(conn.execute(text("SELECT id FROM document_versions")).scalars())
    assert len(versions) == 3
    assert _pending(engine) == set() and _indexed(engine, "数据要素市场化") == versions
    _integrity_check(engine)
    engine.dispose()
