"""The analyst web app over a real store filled by the pipeline (SQLite and PostgreSQL): every page
and endpoint answers, filters filter, pagination pages, diffs mark characters, page text is escaped."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from policywatch.web import create_app
from storage.db import make_engine
from tests.support.site import LocalSite
from tests.test_web_support import PLAN_NUMBER, SCRIPT_TITLE, WebWorld, build_world

ATOM = "{http://www.w3.org/2005/Atom}"
RAW_SCRIPT = "<script>alert("


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorld]:
    """One store per database, built once for the module by three real pipeline cycles."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'policywatch.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _reset_postgres(url)
    site = LocalSite()
    try:
        yield build_world(site, url)
    finally:
        site.close()


@pytest.fixture(scope="module")
def client(world: WebWorld) -> Iterator[TestClient]:
    engine = make_engine(world.url)
    with TestClient(create_app(engine)) as test_client:
        yield test_client
    engine.dispose()


def all_changes(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/changes", params={"per_page": 200, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- every page and endpoint answers --------------------------------------------------------------


def test_every_page_and_endpoint_answers(client: TestClient, world: WebWorld) -> None:
    ids = world.ids
    old, new = ids["first_change_old"], ids["first_change_new"]
    html_pages = [
        "/",
        "/changes",
        "/changes?kind=changed&source=gov&relevant=yes&since=2000-01-01&until=2999-12-31",
        *(f"/documents/{ids[k]}" for k in ("plan", "other", "gone", "script", "repost")),
        f"/versions/{new}",
        f"/diff/{old}/{new}",
        f"/diff/{old}/{new}?mode=inline&context=0",
        "/search?q=数字经济",
        "/search?q=数",
        "/search",
        "/dashboard",
        "/dashboard?days=7",
    ]
    for path in html_pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith("text/html"), path
    other = {
        "/feed/changes.atom": "application/atom+xml",
        "/feed/sources/gov.atom": "application/atom+xml",
        "/export/changes.csv": "text/csv",
        "/export/changes.json": "application/json",
        f"/export/documents/{ids['plan']}/history.csv": "text/csv",
        f"/export/documents/{ids['plan']}/history.json": "application/json",
        "/api/changes": "application/json",
        f"/api/documents/{ids['plan']}": "application/json",
        f"/api/documents/{ids['plan']}/history": "application/json",
        f"/api/versions/{new}": "application/json",
        f"/api/diff/{old}/{new}": "application/json",
        "/api/search?q=数字经济": "application/json",
        "/api/sources": "application/json",
        "/api/dashboard": "application/json",
        "/api/openapi.json": "application/json",
    }
    for path, media in other.items():
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith(media), path


def test_openapi_document_describes_the_api(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/changes",
        "/api/documents/{document_id}",
        "/api/documents/{document_id}/history",
        "/api/diff/{old_id}/{new_id}",
        "/api/search",
        "/api/dashboard",
    ):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/api/changes"]["get"]["parameters"]}
    assert {"source", "kind", "relevant", "since", "until", "page", "per_page"} <= params


def test_missing_things_are_404_and_bad_parameters_400(client: TestClient) -> None:
    assert client.get("/documents/999999").status_code == 404
    assert client.get("/api/documents/999999").json() == {"detail": "no document 999999"}
    assert client.get("/diff/999998/999999").status_code == 404
    assert client.get("/feed/sources/nope.atom").status_code == 404
    for bad in ("kind=bogus", "since=yesterday", "relevant=maybe", "page=0", "per_page=100000"):
        response = client.get(f"/api/changes?{bad}")
        assert response.status_code == 400, bad
    page = client.get("/changes?kind=<b>bogus</b>")
    assert page.status_code == 400 and "<b>bogus" not in page.text and "&lt;b&gt;bogus" in page.text


# --- filters and pagination -----------------------------------------------------------------------


def test_changes_are_newest_first_and_filters_filter(client: TestClient) -> None:
    everything = all_changes(client)
    kinds = {c["kind"] for c in everything}
    assert {"new", "changed", "removed", "republished"} <= kinds
    assert [c["detected_at"] for c in everything] == sorted(
        (c["detected_at"] for c in everything), reverse=True
    )

    changed = all_changes(client, kind="changed")
    assert len(changed) == 2 and {c["kind"] for c in changed} == {"changed"}
    news = all_changes(client, source="news")
    assert news and {c["source"] for c in news} == {"news"}
    assert len(all_changes(client, source="gov")) + len(news) == len(everything)
    relevant = all_changes(client, relevant="yes")
    irrelevant = all_changes(client, relevant="no")
    assert relevant and all(c["relevant"] for c in relevant)
    assert all(not c["relevant"] for c in irrelevant)
    assert len(relevant) + len(irrelevant) == len(everything)

    today = datetime.now(UTC).date()
    assert all_changes(client, since=(today + timedelta(days=2)).isoformat()) == []
    assert all_changes(client, until=(today - timedelta(days=2)).isoformat()) == []
    assert len(all_changes(client, since=today.isoformat(), until=today.isoformat())) == len(everything)
    newest = everything[0]["detected_at"]
    assert [c["id"] for c in all_changes(client, since=newest)] == [
        c["id"] for c in everything if c["detected_at"] >= newest
    ]

    page = client.get("/changes", params={"kind": "removed"}).text
    assert 'class="kind kind-removed"' in page and 'class="kind kind-new"' not in page


def test_pagination_pages_through_everything_once(client: TestClient) -> None:
    everything = [c["id"] for c in all_changes(client)]
    assert len(everything) > 6
    seen: list[int] = []
    page = 1
    while page:
        body = client.get("/api/changes", params={"per_page": 3, "page": page}).json()
        assert body["page"] == page and len(body["items"]) <= 3
        seen += [c["id"] for c in body["items"]]
        page = body["next_page"]
    assert seen == everything

    first = client.get("/changes?per_page=3").text
    assert first.count('class="change"') == 3 and 'rel="next"' in first and 'rel="prev"' not in first
    last_number = (len(everything) + 2) // 3
    last = client.get(f"/changes?per_page=3&page={last_number}").text
    assert 'rel="next"' not in last and 'rel="prev"' in last
    assert last.count('class="change"') == len(everything) - 3 * (last_number - 1)
    # The pager keeps the filters.
    filtered = client.get("/changes?per_page=1&source=gov").text
    assert "source=gov" in filtered.split('rel="next"')[0].rsplit("<a", 1)[-1]

    hits = client.get("/api/search", params={"q": "数字经济", "per_page": 2}).json()
    assert len(hits["items"]) == 2 and hits["next_page"] == 2
    more = client.get("/api/search", params={"q": "数字经济", "per_page": 2, "page": 2}).json()
    assert not {h["document_id"] for h in hits["items"]} & {h["document_id"] for h in more["items"]}


# --- documents, diffs, search ---------------------------------------------------------------------


def test_document_page_shows_metadata_urls_reposts_timeline_and_versions(
    client: TestClient, world: WebWorld
) -> None:
    plan = client.get(f"/documents/{world.ids['plan']}").text
    assert PLAN_NUMBER in plan and "江西省人民政府" in plan and "2022-05-25" in plan
    assert plan.count('<rect x="') == 3  # three versions on the timeline
    assert "<svg" in plan and "<circle" in plan
    assert plan.count("/diff/") >= 2

    other = client.get(f"/documents/{world.ids['other']}").text
    assert "/gov/content/other-moved.html" in other
    assert "former URLs" in other and "/gov/content/other.html" in other
    assert f'href="/documents/{world.ids["repost"]}"' in other  # the news repost of it

    repost = client.get(f"/api/documents/{world.ids['repost']}").json()
    assert repost["republished_of"]["document_id"] == world.ids["other"]
    assert [e["kind"] for e in repost["events"]] == ["republished"]

    history = client.get(f"/api/documents/{world.ids['plan']}/history").json()
    assert [v["id"] for v in history["versions"]] == sorted(v["id"] for v in history["versions"])
    assert len(history["versions"]) == 3 and history["doc_number"] == PLAN_NUMBER


def test_diff_page_marks_the_changed_characters_and_the_moved_sentence(
    client: TestClient, world: WebWorld
) -> None:
    old, new = world.ids["first_change_old"], world.ids["first_change_new"]
    side = client.get(f"/diff/{old}/{new}").text
    assert '<del class="pw-del">8354</del>' in side and '<ins class="pw-ins">9000</ins>' in side
    assert "moved from paragraph" in side
    assert '<details class="fold">' in side and "unchanged sentence" in side
    assert 'class="cell old"' in side

    inline = client.get(f"/diff/{old}/{new}?mode=inline").text
    assert '<del class="pw-del">8354</del><ins class="pw-ins">9000</ins>' in inline
    assert 'class="cell old"' not in inline

    api = client.get(f"/api/diff/{old}/{new}").json()
    assert {c["op"] for c in api["changes"]} >= {"replace", "move"}
    spans = [s for c in api["changes"] for s in c["spans"]]
    assert any(s["old_text"] == "8354" and s["new_text"] == "9000" for s in spans)

    same = client.get(f"/diff/{new}/{new}").text
    assert "No difference" in same


def test_search_finds_chinese_substrings_and_highlights_them(client: TestClient, world: WebWorld) -> None:
    long_hits = client.get("/api/search", params={"q": "9500"}).json()["items"]
    assert [h["document_id"] for h in long_hits] == [world.ids["plan"]]
    assert client.get("/api/search", params={"q": "9000"}).json()["items"] == []  # not current any more
    assert client.get("/api/search", params={"q": "数字经济发展规划"}).json()["items"]
    # 1-2 characters: below the trigram index, still found.
    two = client.get("/api/search", params={"q": "规划"}).json()["items"]
    assert world.ids["plan"] in {h["document_id"] for h in two}
    # Full-width query, half-width (NFKC) text.
    assert client.get("/api/search", params={"q": "９５００"}).json()["items"]

    page = client.get("/search", params={"q": "9500"}).text
    assert "<mark>9500</mark>" in page
    assert client.get("/search", params={"q": "規劃不存在的词"}).text.count('class="hit"') == 0


# --- escaping -------------------------------------------------------------------------------------


def test_script_in_a_title_is_shown_as_text(client: TestClient, world: WebWorld) -> None:
    escaped = "&lt;script&gt;alert("
    script_doc = world.ids["script"]
    version = client.get(f"/api/documents/{script_doc}").json()["current_version_id"]
    pages = [
        "/changes",
        f"/documents/{world.ids['script']}",
        "/search?q=数据要素市场化",
        f"/versions/{version}",
    ]
    for path in pages:
        body = client.get(path).text
        assert RAW_SCRIPT not in body, path
        assert escaped in body, path
    feed = client.get("/feed/changes.atom").text
    assert RAW_SCRIPT not in feed
    titles = [e.findtext(f"{ATOM}title") for e in ET.fromstring(feed).iter(f"{ATOM}entry")]
    assert f"[new] {SCRIPT_TITLE}" in titles  # the XML parser gives back the text as it was
    assert SCRIPT_TITLE in {c["title"] for c in all_changes(client)}  # JSON carries it unchanged


# --- dashboard, feeds, exports --------------------------------------------------------------------


def test_dashboard_shows_changes_per_source_and_health(client: TestClient) -> None:
    data = client.get("/api/dashboard").json()
    per_source: dict[str, int] = {}
    for row in data["changes_per_day"]:
        per_source[row["source"]] = per_source.get(row["source"], 0) + row["count"]
    assert per_source == {
        "gov": len(all_changes(client, source="gov")),
        "news": len(all_changes(client, source="news")),
    }
    health = {h["id"]: h for h in data["health"]}
    assert health["gov"]["errors"] >= 1 and 0 < health["gov"]["error_rate"] < 1
    assert health["gov"]["last_error"]["status"] == 503
    assert health["news"]["errors"] == 0 and health["news"]["last_success_at"]
    page = client.get("/dashboard").text
    assert "<svg" in page and page.count("<rect") >= 2 and "演示政府网" in page and "%" in page


def test_atom_feeds_overall_and_per_source(client: TestClient) -> None:
    overall = ET.fromstring(client.get("/feed/changes.atom").content)
    entries = list(overall.iter(f"{ATOM}entry"))
    assert len(entries) == len(all_changes(client))
    assert all(e.find(f"{ATOM}link").get("href", "").startswith("http://testserver/") for e in entries)
    news = ET.fromstring(client.get("/feed/sources/news.atom").content)
    news_terms = {c.get("term") for e in news.iter(f"{ATOM}entry") for c in e.iter(f"{ATOM}category")}
    assert "news" in news_terms and "gov" not in news_terms
    filtered = ET.fromstring(client.get("/feed/changes.atom?kind=changed").content)
    assert len(list(filtered.iter(f"{ATOM}entry"))) == 2


def test_csv_and_json_exports_of_changes_and_history(client: TestClient, world: WebWorld) -> None:
    rows = list(csv.DictReader(io.StringIO(client.get("/export/changes.csv").content.decode("utf-8-sig"))))
    everything = all_changes(client)
    assert [int(r["id"]) for r in rows] == [c["id"] for c in everything]
    assert set(rows[0]) >= {"id", "kind", "source", "title", "detected_at", "summary", "significance"}
    gov_only = json.loads(client.get("/export/changes.json?source=gov").content)
    assert gov_only and {c["source"] for c in gov_only} == {"gov"}
    response = client.get(f"/export/documents/{world.ids['plan']}/history.csv")
    assert "attachment" in response.headers["content-disposition"]
    history = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(history) == 3 and history[0]["doc_number"] == PLAN_NUMBER
    as_json = client.get(f"/export/documents/{world.ids['plan']}/history.json").json()
    assert [v["id"] for v in as_json["versions"]] == [int(r["id"]) for r in history]


def test_search_finds_current_versions_only(client: TestClient, world: WebWorld) -> None:
    from policywatch.search import search_documents
    from storage.db import session_factory

    engine = make_engine(world.url)
    with engine.connect() as conn:
        current = set(conn.execute(text("SELECT current_version_id FROM documents")).scalars()) - {None}
        if engine.dialect.name == "sqlite":

            def matching(needle: str) -> set[int]:
                query = text("SELECT rowid FROM document_search WHERE document_search MATCH :q")
                return set(conn.execute(query, {"q": f'"{needle}"'}).scalars())

            # Every version is indexed once, when recorded (migration 0007): the plan's old texts
            # (8354, then 9000) stay in the index, its current one (9500) is there too.
            assert (
                matching("8354") and matching("9000") and not (matching("8354") | matching("9000")) & current
            )
            assert matching("9500") <= current and len(matching("9500")) == 1
            plan = conn.execute(
                text("EXPLAIN QUERY PLAN SELECT rowid FROM document_search WHERE document_search MATCH 'abc'")
            ).all()
            assert any("VIRTUAL TABLE INDEX" in str(row) for row in plan)
        else:
            names = set(conn.execute(text("SELECT indexname FROM pg_indexes")).scalars())
            assert {"ix_document_versions_text_trgm", "ix_document_versions_title_trgm"} <= names
    # What a search returns is the current versions: an old text finds nothing.
    with session_factory(engine)() as session:
        assert search_documents(session, "8354") == search_documents(session, "9000") == []
        [hit] = search_documents(session, "9500")
        assert hit["version_id"] in current
        assert client.get("/api/search", params={"q": "8354"}).json()["items"] == []
    engine.dispose()
