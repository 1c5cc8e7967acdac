"""Pages are untrusted: where links may lead, what their text may do to a terminal or a web page,
and whether their words can reach the database as SQL.

All traffic stays on 127.0.0.1 (and [::1]): a private-address rule that failed would still only
reach this machine.
"""

from __future__ import annotations

import ast
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from crawlers import Fetcher, canonical_url, discover_links
from policywatch import cli
from policywatch.config import parse_config
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.pipeline import CycleSummary, process_targets, run_cycle
from storage.db import ensure_schema, make_engine, session_factory, unit_of_work
from storage.models import ChangeEvent, Document, DocumentVersion, FetchAttempt
from tests.support.site import LocalSite

PROJECT = Path(__file__).resolve().parent.parent
PARAS = corpus_paragraphs("004")


@dataclass
class Store:
    url: str

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)
        self.sessions = session_factory(self.engine)

    def count(self, model: type) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(model)) or 0

    def attempts(self) -> list[FetchAttempt]:
        with self.sessions() as s:
            return list(s.scalars(select(FetchAttempt).order_by(FetchAttempt.id)))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.engine.dispose()


def config_for(site: LocalSite, extra: str = "", listing: str = "/list/") -> str:
    return f"""
sources:
  - id: untrusted
    name: 不可信
    listing_urls: ["{site.url(listing)}"]
    link_pattern: "/content/"
    min_delay_s: 0
{extra}
settings:
  max_attempts: 1
  connect_timeout_s: 1
  read_timeout_s: 2
"""


# --- where links may lead -----------------------------------------------------------------------


def test_only_http_links_are_followed(site: LocalSite, store: Store) -> None:
    port = site.server.server_address[1]
    site.put(
        "/list/",
        f"""<html><body>
        <a href="/content/ok.html">ok</a>
        <a href="file:///etc/passwd#/content/">file</a>
        <a href="ftp://127.0.0.1:{port}/content/ftp.html">ftp</a>
        <a href="javascript:fetch('/content/js.html')">js</a>
        <a href="data:text/html,<a href=/content/data.html>">data</a>
        <a href="mailto:x@example.org?subject=/content/">mail</a>
        <a href="gopher://127.0.0.1:{port}/content/gopher">gopher</a>
        </body></html>""",
    )
    site.put("/content/ok.html", gov_cn_page("关于数字经济的通知", PARAS[1:20]))
    summary = run_cycle(parse_config(config_for(site)), store.engine)
    assert (summary.baseline, summary.errors) == (1, 0), summary.failures
    assert {r.path for r in site.requests} == {"/robots.txt", "/list/", "/content/ok.html"}
    assert summary.documents_seen == 1


def test_redirect_to_another_scheme_is_a_fetch_error(site: LocalSite, store: Store) -> None:
    site.put("/list/", '<a href="/content/a.html">a</a> <a href="/content/b.html">b</a>')
    site.put("/content/a.html", "", status=302, headers={"Location": "file:///etc/passwd"})
    site.put("/content/b.html", "", status=301, headers={"Location": "ftp://127.0.0.1/content/c.html"})
    summary = run_cycle(parse_config(config_for(site)), store.engine)
    assert summary.errors == 2 and store.count(Document) == 0
    kinds = {
        a.url.rsplit("/", 1)[1]: (a.outcome, a.error_kind) for a in store.attempts() if a.document_id is None
    }
    assert kinds["a.html"] == ("error", "scheme") and kinds["b.html"] == ("error", "scheme")


LOOPBACK_SPELLINGS = (
    "http://127.0.0.1:{port}/content/1.html",
    "http://localhost:{port}/content/2.html",
    "http://127.0.0.2:{port}/content/3.html",
    "http://[::1]:{port}/content/4.html",
    "http://2130706433:{port}/content/5.html",  # 127.0.0.1 as one decimal number
    "http://0x7f.1:{port}/content/6.html",  # and in hex, as inet_aton reads it
    "http://[::ffff:127.0.0.1]:{port}/content/7.html",
    "http://0.0.0.0:{port}/content/8.html",
)


def test_private_links_are_refused_when_the_source_does_not_allow_them(site: LocalSite, store: Store) -> None:
    """A source with allow_private: false. Its listing lists links to loopback spellings; each
    is refused as a "blocked" fetch error and no request reaches the server."""
    port = site.server.server_address[1]
    links = [u.format(port=port) for u in LOOPBACK_SPELLINGS]
    site.put("/list/", "".join(f'<a href="{u}">x</a>' for u in links))
    for i in range(1, 9):
        site.put(f"/content/{i}.html", gov_cn_page("关于数字经济的通知", PARAS[1:20]))
    config = parse_config(config_for(site, "    allow_private: false"))
    source = config.sources[0]

    # The listing is read by the test (as if it were on a public host), its links go through the
    # pipeline's own fetch-and-record stage for that source.
    with Fetcher(respect_robots=False) as reader:
        listing = reader.fetch_page(site.url("/list/"), min_delay_s=0, allow_private=True)
    assert listing.text is not None
    discovered = discover_links(listing.text, listing.final_url, "/content/")
    assert len(discovered) == len(links)
    seen_before = len(site.requests)

    ensure_schema(store.engine)
    with unit_of_work(store.sessions) as s:
        from storage.store import ensure_source

        ensure_source(s, source.id, source.name)
    from policywatch.pipeline import Target, make_fetcher

    with make_fetcher(config.settings) as fetcher:
        summary = process_targets(
            source, store.sessions, fetcher, [Target(u) for u in discovered], silent=True
        )
    assert summary.errors == len(links), summary.failures
    assert all("blocked" in f["error"] for f in summary.failures), summary.failures
    assert len(site.requests) == seen_before  # nothing reached the server
    assert {a.error_kind for a in store.attempts()} == {"blocked"}
    assert store.count(Document) == 0


def test_a_source_that_does_not_allow_private_addresses_reaches_none(site: LocalSite, store: Store) -> None:
    site.put("/list/", '<a href="/content/1.html">x</a>')
    site.put("/content/1.html", gov_cn_page("关于数字经济的通知", PARAS[1:20]))
    extra = f'    allow_private: false\n    pages: ["{site.url("/content/1.html")}"]'
    summary = run_cycle(parse_config(config_for(site, extra)), store.engine)
    assert summary.errors == 2 and all("blocked" in f["error"] for f in summary.failures)
    assert site.requests == []
    assert store.count(Document) == 0


# --- page text in the terminal and in HTML --------------------------------------------------------

HOSTILE_TITLE = (
    '关于数据安全的通知<script>alert("t")</script>\r\nBcc: victim@example.org\x1b[2J\x07\u202eexe.pdf'
)
HOSTILE_PARAS = [
    "第一条 为了规范数据处理活动\x1b]0;pwned\x07，保障数据安全。",
    "第二条 <img src=x onerror=alert(1)> 在中华人民共和国境内开展数据处理活动\r\nSubject: injected",
    "第三条 国家统筹发展和安全\u202e，坚持以数据开发利用和产业发展促进数据安全。\x9b31m",
]


def _harmless_in_terminal(output: str) -> None:
    bad = sorted(
        {hex(ord(ch)) for ch in output if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")}
    )
    assert bad == [], f"control characters in CLI output: {bad}"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def hostile_store(
    site: LocalSite, store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalSite, Store]]:
    """A store with a 'new' and a 'changed' event of a page full of markup and control characters."""
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    config = parse_config(config_for(site))
    site.put("/list/", '<a href="/content/benign.html">b</a>')
    site.put("/content/benign.html", gov_cn_page("关于数字经济的通知", PARAS[1:20]))
    run_cycle(config, store.engine)  # the baseline
    site.put("/list/", '<a href="/content/benign.html">b</a><a href="/content/hostile.html">h</a>')
    site.put("/content/hostile.html", gov_cn_page(HOSTILE_TITLE, HOSTILE_PARAS))
    assert run_cycle(config, store.engine).new == 1
    site.put(
        "/content/hostile.html",
        gov_cn_page(
            HOSTILE_TITLE, [*HOSTILE_PARAS, "第四条 \x1b[5m<script>alert(4)</script>本法自公布之日起施行。"]
        ),
    )
    assert run_cycle(config, store.engine).changed == 1
    yield site, store


def test_hostile_text_is_harmless_in_cli_output(
    hostile_store: tuple[LocalSite, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    site, store = hostile_store
    with store.sessions() as s:
        doc = s.scalar(select(Document).where(Document.url == site.url("/content/hostile.html")))
        assert doc is not None
        versions = [
            v for v in s.scalars(select(DocumentVersion.id).where(DocumentVersion.document_id == doc.id))
        ]
        # What a page says as text stays text: markup is kept as characters, never interpreted.
        assert "<script>" in (doc.title or "")
    outputs = []
    for args in (
        ["changes"],
        ["history", str(doc.id)],
        ["search", "数据安全"],
        ["show", str(versions[-1])],
        ["show", "--original", str(versions[-1])],
        ["diff", str(versions[0]), str(versions[1])],
    ):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        _harmless_in_terminal(out)
        outputs.append(out)
    # One line per event in `changes`, whatever the title holds.
    assert len(outputs[0].strip().splitlines()) == 2


def test_hostile_text_is_escaped_in_html_and_json(
    hostile_store: tuple[LocalSite, Store], capsys: pytest.CaptureFixture[str]
) -> None:
    _, store = hostile_store
    with store.sessions() as s:
        old, new = s.scalars(
            select(DocumentVersion.id).where(DocumentVersion.title.contains("数据安全"))
        ).all()
    code, html_out, _ = run_cli(capsys, "diff", str(old), str(new), "--format", "html")
    assert code == 0
    assert "<script" not in html_out
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in html_out
    code, out, _ = run_cli(capsys, "changes", "--json")
    assert code == 0
    events = json.loads(out)
    assert {e["kind"] for e in events} == {"new", "changed"}
    assert all("\x1b" not in e["title"] and "\r" not in e["title"] for e in events)


def test_cli_listing_commands_neutralise_control_characters_already_stored(
    store: Store, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written before text was cleaned at extraction (or by another writer) still print safely."""
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    ensure_schema(store.engine)
    with unit_of_work(store.sessions) as s:
        from storage.store import ensure_source

        ensure_source(s, "raw", "raw")
        doc = Document(source_id="raw", url="http://127.0.0.1/content/raw.html", title=HOSTILE_TITLE)
        s.add(doc)
        s.flush()
        version = DocumentVersion(
            document_id=doc.id,
            content_hash="0" * 64,
            title=HOSTILE_TITLE,
            text="\n".join(HOSTILE_PARAS),
            normalized_text="\n".join(HOSTILE_PARAS),
            chars=100,
            url=doc.url,
        )
        s.add(version)
        s.flush()
        doc.current_version_id = version.id
        s.add(
            ChangeEvent(
                kind="new",
                source_id="raw",
                document_id=doc.id,
                url=doc.url,
                title=HOSTILE_TITLE,
                new_version_id=version.id,
                summary="\x1b[2J" + HOSTILE_PARAS[0],
            )
        )
    for args in (["changes"], ["history", doc.url], ["search", "数据处理"]):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, err
        _harmless_in_terminal(out)


# --- SQL: bound parameters only -------------------------------------------------------------------

INJECTIONS = (
    "'; DROP TABLE documents; --",
    '"; DROP TABLE documents; --',
    "' OR '1'='1",
    "数字%规划",  # as LIKE wildcards these would match ("数字经济发展规划", "数字经济")
    "数_经济",
    "\\",
    "数据' OR 1=1 --",
    '"数据安全"',
    "data* OR NEAR(a b)",
)


def test_quotes_and_sql_in_queries_and_urls_harm_nothing(
    site: LocalSite,
    store: Store,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLICYWATCH_DATABASE_URL", db_url)
    quoted_path = "/content/o'brien.html?id=1;DROP%20TABLE%20documents"
    title = "关于'数据'安全\"治理\"的通知'; DROP TABLE change_events; --"
    site.put("/list/", f'<a href="{quoted_path}">q</a> <a href="/content/plain.html">p</a>')
    page = site.put("/x", gov_cn_page(title, PARAS[1:20]))
    requested = urlsplit(canonical_url(site.url(quoted_path)))
    site.pages[quoted_path] = site.pages[f"{requested.path}?{requested.query}"] = page
    site.put("/content/plain.html", gov_cn_page("关于数字经济的通知", PARAS[20:40]))
    summary: CycleSummary = run_cycle(parse_config(config_for(site)), store.engine)
    assert (summary.baseline, summary.errors) == (2, 0), summary.failures
    before = (store.count(Document), store.count(DocumentVersion), store.count(FetchAttempt))

    for query in INJECTIONS:
        code, out, err = run_cli(capsys, "search", query, "--json")
        assert code == 0, (query, err)
        assert json.loads(out) == [], query
    code, out, _ = run_cli(capsys, "search", "'数据'安全\"治理\"", "--json")
    assert code == 0 and [r["title"] for r in json.loads(out)] == [title]
    code, out, _ = run_cli(capsys, "search", "DROP TABLE change_events", "--json")
    assert code == 0 and len(json.loads(out)) == 1

    code, out, err = run_cli(capsys, "history", site.url(quoted_path), "--json")
    assert code == 0, err
    assert json.loads(out)["title"] == title
    code, _, err = run_cli(capsys, "history", "http://x/'; DELETE FROM documents; --")
    assert code == 1 and "no document" in err
    code, out, _ = run_cli(capsys, "changes", "--source", "x' OR '1'='1", "--json")
    assert code == 0 and json.loads(out) == []

    assert (store.count(Document), store.count(DocumentVersion), store.count(FetchAttempt)) == before


_SQL_CALLS = {"text", "exec_driver_sql", "execute", "executescript", "executemany"}


def _dynamic_sql(tree: ast.AST) -> list[int]:
    """Lines where SQL text is built at run time from something other than constants."""

    def constant_only(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(
                isinstance(v, ast.Constant)
                or (
                    isinstance(v, ast.FormattedValue)
                    and isinstance(v.value, ast.Name)
                    and v.value.id.isupper()
                )
                for v in node.values
            )
        return False

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        first = node.args[0]
        if name in _SQL_CALLS and isinstance(first, ast.JoinedStr | ast.BinOp) and not constant_only(first):
            found.append(node.lineno)
        if (
            name in _SQL_CALLS
            and isinstance(first, ast.Call)
            and isinstance(first.func, ast.Attribute)
            and first.func.attr == "format"
        ):
            found.append(node.lineno)
    return found


def test_no_sql_is_built_from_strings() -> None:
    """Static: no text()/execute() call gets SQL formatted at run time (only module constants)."""
    offenders = {}
    for package in ("storage", "policywatch", "alerts", "crawlers", "dags"):
        for path in sorted((PROJECT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # DDL assembled from the migration's own constant tables, never from data
            lines = _dynamic_sql(ast.parse(path.read_text(encoding="utf-8")))
            if lines:
                offenders[str(path.relative_to(PROJECT))] = lines
    assert offenders == {}
    # ...and the check itself finds what it must.
    assert _dynamic_sql(ast.parse("conn.execute(text(f'SELECT * FROM t WHERE a = {value}'))")) == [1]
    assert _dynamic_sql(ast.parse("conn.exec_driver_sql('DELETE FROM t WHERE a = ' + value)")) == [1]
    assert _dynamic_sql(ast.parse("session.execute(text(f'SELECT 1 FROM {FTS_TABLE}'))")) == []
