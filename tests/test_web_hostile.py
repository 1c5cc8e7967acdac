"""The analyst web app against hostile traffic and hostile values (SQLite and PostgreSQL).

- Load: `policywatch web` (a real uvicorn server on 127.0.0.1) under 100 concurrent clients for 5 s
  answers 200 or a deliberate 503 with Retry-After, nothing else, never collapses (no answer took
  10 s), and serves a request made right after the load. (Speed is measured in
  benchmarks/web_load.py; the bounds here only prove there is no collapse.)
- Diffs: computed once per pair of versions (again only when a version is rewritten), off the
  request threads, and a diff that takes very long pins neither the workers nor its requests.
- Ids beyond 64 bits in every route and query parameter: 404 / an empty page; far-future and
  out-of-range dates: an empty list, no bound, or 400 with a clear message. Never 500.
- Atom feeds stay well-formed XML (strict parser) whatever characters titles, summaries, source
  names or the query carry: U+FFFF, U+FFFE, C0 controls, lone surrogates.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import lxml.etree
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, text

from benchmarks.web_bench import build_store
from benchmarks.web_load import Server, change_and_search_paths, run_load
from policywatch import policydiff
from policywatch.web import create_app
from storage.db import make_engine
from storage.models import ChangeEvent, Document, DocumentVersion, Source

DOCS = 300
VERSIONS = 3
HUGE = (str(2**63), str(-(2**63) - 1), "1" + "0" * 40)
ATOM = "{http://www.w3.org/2005/Atom}"
# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, U+FFFE, U+FFFF) in stored text.
BAD_TITLE = "数字经济\uffff通知\ufffe第\x01号\x08\x1b[31m\x0b\x0c\x1f（修订）"
BAD_SUMMARY = "1 change: 35\uffff → 50\x1f"  # (PostgreSQL text holds no NUL)
BAD_SOURCE_NAME = "不可见\uffff来源\x02"
HOSTILE_DOC = 100_001
HOSTILE_VERSIONS = (900_001, 900_002)
LOAD_CLIENTS = 100
LOAD_SECONDS = 5.0
NO_COLLAPSE_S = 10.0  # a generous bound: before the fix answers took 30-60 s under load


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _add_hostile_rows(url: str) -> None:
    """A source, a document, two versions and events whose texts carry XML-invalid characters."""
    engine = make_engine(url)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    base = {
        "document_id": HOSTILE_DOC,
        "doc_number": None,
        "issuer": None,
        "published_at": None,
        "url": "https://hostile.example.cn/1.html",
        "first_seen_at": now,
        "last_seen_at": now,
    }
    texts = ["第一段。数字经济发展。", "第一段。数字经济高质量发展。"]
    with engine.begin() as conn:
        conn.execute(insert(Source), [{"id": "hostile", "name": BAD_SOURCE_NAME, "created_at": now}])
        conn.execute(
            insert(Document),
            [
                {
                    "id": HOSTILE_DOC,
                    "source_id": "hostile",
                    "url": "https://hostile.example.cn/1.html",
                    "status": "active",
                    "title": BAD_TITLE,
                    "first_seen_at": now,
                }
            ],
        )
        conn.execute(
            insert(DocumentVersion),
            [
                {
                    **base,
                    "id": vid,
                    "title": BAD_TITLE,
                    "text": body,
                    "normalized_text": body,
                    "content_hash": hashlib.sha256(body.encode()).hexdigest(),
                    "chars": len(body),
                }
                for vid, body in zip(HOSTILE_VERSIONS, texts, strict=True)
            ],
        )
        conn.execute(
            text("UPDATE documents SET current_version_id = :v WHERE id = :d"),
            {"v": HOSTILE_VERSIONS[1], "d": HOSTILE_DOC},
        )
        conn.execute(
            insert(ChangeEvent),
            [
                {
                    "kind": kind,
                    "source_id": "hostile",
                    "document_id": HOSTILE_DOC,
                    "url": "https://hostile.example.cn/1.html\x01",
                    "title": BAD_TITLE,
                    "old_version_id": old,
                    "new_version_id": new,
                    "detected_at": now.replace(hour=n),
                    "relevant": True,
                    "relevance_terms": ["数字经济\uffff"],
                    "significance": 0.5,
                    "summary": BAD_SUMMARY,
                    "original_document_id": None,
                }
                for n, (kind, old, new) in enumerate(
                    [("new", None, HOSTILE_VERSIONS[0]), ("changed", *HOSTILE_VERSIONS)]
                )
            ],
        )
    engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of DOCS documents x VERSIONS versions (the benchmark's builder) plus hostile rows."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'policywatch.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        _reset_postgres(url)
    build_store(url, DOCS, VERSIONS)
    _add_hostile_rows(url)
    return url


@pytest.fixture(scope="module")
def client(store_url: str) -> Iterator[TestClient]:
    engine = make_engine(store_url)
    with TestClient(create_app(engine), raise_server_exceptions=False) as test_client:
        yield test_client
    engine.dispose()


# --- 1. load: shed with a fast 503, never collapse, recover at once -------------------------------


@pytest.mark.parametrize("launcher", ["cli", "web"])
def test_load_is_shed_with_503_and_the_server_recovers(store_url: str, launcher: str, tmp_path: Path) -> None:
    # cli: `policywatch web`, as it is started; web: `python -m web.server`, the server it runs with
    # one worker process per core. Small limits, so that 100 clients saturate it on any machine.
    env = {"POLICYWATCH_WEB_CONCURRENCY": "2", "POLICYWATCH_WEB_QUEUE": "4", "POLICYWATCH_WEB_WORKERS": "2"}
    log = tmp_path / "server.log"
    with Server(store_url, launcher, env=env, log_path=log) as server:
        run = run_load(
            server.base_url,
            LOAD_CLIENTS,
            LOAD_SECONDS,
            change_and_search_paths(DOCS),
            timeout=30,
            client="raw",
        )
        after = httpx.get(server.base_url + "/api/changes", timeout=30)
    statuses = run.by_status()
    slowest = max(s.seconds for s in run.samples)
    assert set(statuses) <= {"200", "503"}, (statuses, log.read_text()[-3000:])
    assert statuses.get("503", 0) > 0, f"100 clients against 2 x 2 slots never saturated: {statuses}"
    assert statuses.get("200", 0) > 0, statuses
    assert all(s.retry_after and s.retry_after.isdigit() for s in run.samples if s.status == "503")
    assert slowest < NO_COLLAPSE_S, f"an answer took {slowest:.1f} s: {run.summary()}"
    # From the moment the clients stop, a request is served at once (the 100 requests still in
    # flight at that moment may have it answered 503 for a fraction of a second); once they are
    # answered, the next request is a 200 at its first try.
    assert run.recovery["recovery_s"] is not None and run.recovery["recovery_s"] < NO_COLLAPSE_S, run.recovery
    assert run.after["status"] == "200" and run.after["seconds"] < NO_COLLAPSE_S, run.after
    assert after.status_code == 200
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]


def test_a_busy_or_unreachable_store_is_503_with_retry_after(store_url: str) -> None:
    """A pool that has no connection free, a locked or lost database: 503 and Retry-After, not 500;
    a real database error stays a 500."""
    from sqlalchemy.exc import OperationalError, ProgrammingError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app = create_app(make_engine(store_url))
    faults = {
        "/pool": PoolTimeout("QueuePool limit of size 4 overflow 4 reached"),
        "/locked": OperationalError("SELECT 1", {}, Exception("database is locked")),
        "/bug": ProgrammingError("SELEC 1", {}, Exception('syntax error at or near "SELEC"')),
    }

    def failing(fault: Exception) -> Any:
        def fail() -> None:
            raise fault

        return fail

    for path, fault in faults.items():
        app.add_api_route("/api/fault" + path, failing(fault))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        for path in ("/pool", "/locked"):
            response = test_client.get("/api/fault" + path)
            assert response.status_code == 503 and response.headers["retry-after"] == "1", response.text
        assert test_client.get("/api/fault/bug").status_code == 500


# --- 2. diffs: once per pair, never pinning the workers -------------------------------------------


class CountingDiff:
    """policywatch.policydiff.diff_texts, counted per pair of first lines; pairs in `slow` wait for `release`."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, str]] = []
        self.slow: set[str] = set()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, old: Any, new: Any) -> Any:
        key = (list(old)[1] if len(old) > 1 else "", list(new)[1] if len(new) > 1 else "")
        with self.lock:
            self.calls.append(key)
        if key[0] in self.slow:
            self.release.wait(60)
        return self.real(old, new)

    def count(self, old_first: str) -> int:
        return sum(1 for k in self.calls if k[0] == old_first)


def _first_line(client: TestClient, version_id: int) -> str:
    return client.get(f"/api/versions/{version_id}").json()["normalized_text"].split("\n")[0]


def test_a_diff_is_computed_once_per_pair_of_versions(
    client: TestClient, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingDiff(policydiff.diff_texts)
    monkeypatch.setattr(policydiff, "diff_texts", counting)
    # Document 7's versions are 19, 20, 21 (the builder numbers them in order).
    old_id, new_id = (7 - 1) * VERSIONS + 1, (7 - 1) * VERSIONS + 2
    first = _first_line(client, old_id)
    pages = [
        f"/diff/{old_id}/{new_id}",
        f"/diff/{old_id}/{new_id}?mode=inline&context=0",
        f"/api/diff/{old_id}/{new_id}",
        f"/diff/{old_id}/{new_id}",
        f"/api/diff/{old_id}/{new_id}",
    ]
    bodies = []
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        bodies.append(response.text)
    assert counting.count(first) == 1, counting.calls
    assert bodies[0] == bodies[3] and bodies[2] == bodies[4]
    assert client.get(f"/api/diff/{new_id}/{old_id}").status_code == 200  # the other direction: its own
    assert len(counting.calls) == 2, counting.calls

    # A version rewritten in place (`policywatch reextract`) is diffed again, with its new text.
    engine = make_engine(store_url)
    new_text = first.replace("数字经济", "数字经济和实体经济")
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT normalized_text FROM document_versions WHERE id = :v"), {"v": old_id}
        ).scalar_one()
        rewritten = row.replace(first, new_text)
        conn.execute(
            text(
                "UPDATE document_versions SET normalized_text = :t, text = :t, content_hash = :h WHERE id = :v"
            ),
            {"t": rewritten, "h": hashlib.sha256(rewritten.encode()).hexdigest(), "v": old_id},
        )
    engine.dispose()
    changes = client.get(f"/api/diff/{old_id}/{new_id}").json()["changes"]
    assert any("实体经济" in (c["old"] or "") for c in changes), changes
    assert counting.count(new_text) == 1


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """The app on a real uvicorn server in this process (so that the test can slow diffs down)."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_very_slow_diff_pins_neither_the_workers_nor_its_requests(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYWATCH_WEB_CONCURRENCY", "4")
    # A line long and patient enough for all 48 requests (the server shares this process, and its
    # GIL, with 48 client threads): any 503 below comes from the diffs, not from the line.
    monkeypatch.setenv("POLICYWATCH_WEB_QUEUE", "64")
    monkeypatch.setenv("POLICYWATCH_WEB_QUEUE_WAIT", "5")
    monkeypatch.setenv("POLICYWATCH_WEB_DIFF_WAIT", "1")
    counting = CountingDiff(policydiff.diff_texts)
    monkeypatch.setattr(policydiff, "diff_texts", counting)
    engine = make_engine(store_url)
    app = create_app(engine)
    pairs = [((d - 1) * VERSIONS + 1, (d - 1) * VERSIONS + 2) for d in (11, 12, 13)]
    with TestClient(app) as probe:
        firsts = [_first_line(probe, old) for old, _ in pairs]
    counting.slow.update(firsts)  # every diff of these pairs takes until `release` (at most 60 s)
    paths = [f"{prefix}/diff/{old}/{new}" for old, new in pairs for prefix in ("", "/api") for _ in range(8)]
    try:
        with serve_in_thread(app) as base, concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:

            def get(path: str) -> tuple[int, float, str | None]:
                t0 = time.perf_counter()
                r = httpx.get(base + path, timeout=30)
                return r.status_code, time.perf_counter() - t0, r.headers.get("retry-after")

            waiting = [pool.submit(get, p) for p in paths]  # 48 requests for 3 slow diffs
            time.sleep(0.5)
            t0 = time.perf_counter()
            other = httpx.get(base + "/api/changes", timeout=30)
            assert other.status_code == 200
            assert time.perf_counter() - t0 < 5, "the slow diffs pinned the workers"
            answers = [f.result(timeout=30) for f in waiting]
            assert {status for status, _, _ in answers} <= {503}, answers
            assert all(seconds < NO_COLLAPSE_S and retry for _, seconds, retry in answers), answers
            counting.release.set()
            deadline = time.monotonic() + 30
            for old, new in pairs:
                while (page := httpx.get(f"{base}/diff/{old}/{new}", timeout=30)).status_code == 503:
                    assert time.monotonic() < deadline, "the diff never became ready"
                    time.sleep(0.2)
                assert page.status_code == 200
    finally:
        counting.release.set()
        engine.dispose()
    for first in firsts:
        assert counting.count(first) == 1, counting.calls  # 16 requests, one computation per pair


# --- 3. ids beyond 64 bits, far-future dates ------------------------------------------------------


def _id_routes(client: TestClient) -> list[str]:
    """Every GET route of the app with an id in its path."""
    return sorted(
        {
            route.path
            for route in client.app.routes  # type: ignore[attr-defined]
            if "GET" in getattr(route, "methods", set()) and re.search(r"\{\w*id\}", route.path)
        }
    )


def test_ids_beyond_64_bits_are_404_in_every_route(client: TestClient) -> None:
    routes = _id_routes(client)
    assert {"/documents/{document_id}", "/api/diff/{old_id}/{new_id}", "/versions/{version_id}"} <= set(
        routes
    )
    for route in routes:
        slots = len(re.findall(r"\{\w*id\}", route))
        for huge in HUGE:
            for values in {(huge,) * slots, (huge, "1"), ("1", huge)} if slots == 2 else {(huge,)}:
                path = route
                for value in values:
                    path = re.sub(r"\{\w*id\}", value, path, count=1)
                response = client.get(path)
                assert response.status_code == 404, (path, response.status_code, response.text[:300])
                assert "no " in response.text, (path, response.text[:300])
    for ref in (*HUGE, "²", "0", "https://x.example.cn/\x00"):
        response = client.get("/api/history", params={"ref": ref})
        assert response.status_code == 404, (ref, response.text[:300])
    # Full-width digits (a Chinese input method's) still name a document.
    assert client.get("/api/history", params={"ref": "１２３"}).json()["document_id"] == 123
    response = client.get(f"/diff?old={HUGE[0]}&new=1")
    assert response.status_code == 404, response.text[:300]


def test_pages_beyond_64_bits_are_empty(client: TestClient) -> None:
    for huge in (HUGE[0], HUGE[2]):
        for path, params in (("/api/changes", {}), ("/api/search", {"q": "数字经济"})):
            response = client.get(path, params={**params, "page": huge})
            assert response.status_code == 200, (path, response.text[:300])
            assert response.json()["items"] == [] and response.json()["next_page"] is None
        for path, params in (("/changes", {}), ("/search", {"q": "数字经济"})):
            assert client.get(path, params={**params, "page": huge}).status_code == 200, path


CHANGE_LISTS = (
    "/changes",
    "/api/changes",
    "/feed/changes.atom",
    "/export/changes.csv",
    "/export/changes.json",
)


def _count(client: TestClient, path: str, params: dict[str, str]) -> int | None:
    response = client.get(path, params={**params, **({"per_page": "200"} if "api" in path else {})})
    assert response.status_code == 200, (path, params, response.status_code, response.text[:300])
    if path == "/api/changes":
        return len(response.json()["items"])
    if path == "/export/changes.json":
        return len(response.json())
    return None


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        ({"since": "9999-12-31T23:59:59"}, "none"),
        ({"since": "9999-12-31"}, "none"),
        ({"since": "9999-12-31T23:59:59-05:00"}, "none"),  # after year 9999 in UTC
        ({"until": "9999-12-31"}, "all"),  # the whole last day: the end is beyond year 9999
        ({"until": "9999-12-31T23:59:59.999999-12:00"}, "all"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "all"),  # before year 1 in UTC
        ({"until": "0001-01-01T00:00:00+05:00"}, "none"),
        ({"since": "0001-01-01", "until": "9999-12-31"}, "all"),
    ],
)
def test_extreme_dates_give_an_empty_list_or_no_bound(
    client: TestClient, params: dict[str, str], expect: str
) -> None:
    for path in CHANGE_LISTS:
        n = _count(client, path, params)
        if n is not None:
            assert n == (0 if expect == "none" else _count(client, path, {})), (path, params, n)
    if expect == "none":
        feed = ET.fromstring(client.get("/feed/changes.atom", params=params).content)
        assert feed.find(f"{ATOM}entry") is None


@pytest.mark.parametrize(
    "value",
    [
        "10000-01-01",
        "+275760-09-13",
        "+275760-09-13T00:00:00Z",
        "-000001-01-01",
        "0000-01-01",
        "99999-12-31T23:59:59",
    ],
)
def test_out_of_range_years_are_400_with_a_clear_message(client: TestClient, value: str) -> None:
    for name in ("since", "until"):
        for path in CHANGE_LISTS:
            response = client.get(path, params={name: value})
            assert response.status_code == 400, (path, name, value, response.status_code, response.text[:300])
            message = response.text if path == "/changes" else response.json()["detail"]
            assert "year" in message and "9999" in message, message


def test_nul_and_odd_digits_in_parameters_are_not_500(client: TestClient) -> None:
    for path, params in [
        ("/api/changes", {"source": "a\x00b"}),
        ("/changes", {"source": "\x00"}),
        ("/feed/changes.atom", {"source": "\x00"}),
        ("/api/history", {"ref": "https://x.example.cn/\x00"}),
        ("/api/search", {"q": "数字\x00经济"}),
    ]:
        response = client.get(path, params=params)
        assert response.status_code in (200, 400, 404), (
            path,
            params,
            response.status_code,
            response.text[:300],
        )


# --- 4. Atom feeds with XML-invalid characters ----------------------------------------------------


def _strict(body: bytes) -> lxml.etree._Element:
    return lxml.etree.fromstring(body, lxml.etree.XMLParser(recover=False, resolve_entities=False))


def test_feeds_stay_well_formed_whatever_the_characters(client: TestClient) -> None:
    feeds = [
        ("/feed/changes.atom", {}),
        ("/feed/changes.atom", {"source": "hostile"}),
        ("/feed/sources/hostile.atom", {}),
        ("/feed/changes.atom", {"source": "\uffff\ufffe\x01\x1f"}),
        ("/feed/changes.atom", {"source": "hostile", "kind": "changed"}),
    ]
    for path, params in feeds:
        response = client.get(path, params=params)
        assert response.status_code == 200, (path, params, response.text[:300])
        root = _strict(response.content)  # lxml, no recovery
        ET.fromstring(response.content)  # expat
        assert root.tag == f"{ATOM}feed"
    entries = _strict(client.get("/feed/sources/hostile.atom").content).findall(f"{ATOM}entry")
    assert len(entries) == 2
    titles = {e.findtext(f"{ATOM}title") for e in entries}
    summary = entries[0].findtext(f"{ATOM}summary") or ""
    # The text is kept, the invalid characters are not (replaced by U+FFFD or dropped).
    assert all(
        t and "数字经济" in t and "（修订）" in t and "\uffff" not in t and "\x01" not in t for t in titles
    )
    assert "35" in summary and "50" in summary
    feed_title = _strict(client.get("/feed/sources/hostile.atom").content).findtext(f"{ATOM}title") or ""
    assert "不可见" in feed_title and "来源" in feed_title


def test_xml_text_removes_every_character_xml_forbids() -> None:
    from policywatch.web.exports import _xml_text

    forbidden = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + [
        "\ud800",
        "\udfff",
        "\ufffe",
        "\uffff",
    ]
    cleaned = _xml_text("a" + "".join(forbidden) + "b<&>\t\U0001f600\u00e9\ue000\ufffd")
    _strict(f"<x>{cleaned}</x>".encode())
    assert cleaned.startswith("a") and cleaned.endswith("b&lt;&amp;&gt;\t\U0001f600\u00e9\ue000\ufffd")
