"""Attachments (附件): found in a page's body, fetched as files, watched as documents of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from crawlers import Fetcher
from policywatch.classify import diff_versions
from policywatch.config import parse_config
from policywatch.demosite.pages import gov_cn_page
from policywatch.extraction.document import extract_document, is_attachment_url
from policywatch.pipeline import run_cycle
from policywatch.search import search_documents
from storage.db import ensure_schema, make_engine, session_factory
from storage.models import ChangeEvent, Document, DocumentVersion
from storage.queries import list_changes
from tests.support.site import LocalSite
from tests.test_attachment_files import PARAGRAPHS, make_docx, make_ofd, make_pdf, make_xlsx

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher(connect_timeout=1, read_timeout=2, backoff_base_s=0.01, max_attempts=1)
    yield f
    f.close()


def test_a_file_is_fetched_as_bytes_whatever_its_content_type(site: LocalSite, fetcher: Fetcher) -> None:
    site.put("/f/plan.pdf", PDF, content_type="application/octet-stream")
    site.put("/f/list.xlsx", b"PK\x03\x04rest", content_type=None)
    for path, body in (("/f/plan.pdf", PDF), ("/f/list.xlsx", b"PK\x03\x04rest")):
        result = fetcher.fetch_page(site.url(path), min_delay_s=0, allow_private=True, file=True)
        assert result.ok and result.body == body and result.error is None, result.error
    # As a page it is still "not HTML", never read as text.
    page = fetcher.fetch_page(site.url("/f/plan.pdf"), min_delay_s=0, allow_private=True)
    assert not page.ok and page.error_kind == "not_html" and page.body is None


def test_a_challenge_served_for_a_file_is_a_fetch_error(site: LocalSite, fetcher: Fetcher) -> None:
    challenge = (
        "<html><script>document.cookie='__jsl_clearance_s=1612345678.9|0|abc';"
        "location.href=location.pathname+location.search</script></html>"
    )
    site.put("/f/plan.pdf", challenge, status=521)
    result = fetcher.fetch_page(site.url("/f/plan.pdf"), min_delay_s=0, allow_private=True, file=True)
    assert not result.ok and result.error_kind == "challenge" and result.body is None
    site.put("/f/gone.pdf", "not found", status=404)
    gone = fetcher.fetch_page(site.url("/f/gone.pdf"), min_delay_s=0, allow_private=True, file=True)
    assert gone.gone and gone.body is None


def test_attachment_links_are_found_in_the_body_and_where_labelled() -> None:
    html = """<html><head><title>关于印发方案的通知</title></head><body>
    <div class="nav"><a href="/about.pdf">年度报告</a></div>
    <div id="UCAP-CONTENT"><p>现将《数字经济发展方案》印发给你们，请认真贯彻执行。各地区要结合实际抓好落实。</p>
    <p>附件：<a href="/files/plan.PDF">1.数字经济发展方案</a>、<a href="list.xlsx?v=2">2.名单</a>
    <a href="javascript:download('x.pdf')">下载</a><a href="/files/plan.PDF#page=2">同上</a></p></div>
    <div class="fj">附件下载：<a href="https://www.gov.cn/files/a.docx">方案全文</a>
    <a href="ftp://www.gov.cn/files/b.pdf">b</a></div></body></html>"""
    doc = extract_document(html, "https://www.gov.cn/zhengce/content/1.htm")
    assert doc.attachments == (
        ("https://www.gov.cn/files/plan.PDF", "1.数字经济发展方案"),
        ("https://www.gov.cn/zhengce/content/list.xlsx?v=2", "2.名单"),
        ("https://www.gov.cn/files/a.docx", "方案全文"),
    )
    # The attachment list is not part of the page's own text or hash: another href, the same text.
    other = extract_document(html.replace("list.xlsx", "l2.xlsx"), "https://www.gov.cn/zhengce/content/1.htm")
    assert other.content_hash == doc.content_hash and other.attachments != doc.attachments
    assert "about.pdf" not in doc.text
    assert is_attachment_url("http://x/a.ofd") and is_attachment_url("http://x/a.WPS?x=1")
    assert not is_attachment_url("http://x/a.pdf.html") and not is_attachment_url("http://x/pdf/")


# --- end to end: a local site with notices and their files, real cycles, a real database -----------

FILE_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/octet-stream",  # as many sites send every file
    ".ofd": "application/ofd",
}


class FileWorld:
    def __init__(self, site: LocalSite, db_url: str) -> None:
        self.site = site
        self.engine = make_engine(db_url)
        ensure_schema(self.engine)
        self.config = parse_config(
            f"""
sources:
  - id: notices
    name: 通知公告
    listing_urls: ["{site.url("/list/")}"]
    link_pattern: "/content/"
    min_delay_s: 0
settings:
  backoff_base_s: 0.01
  max_attempts: 1
"""
        )
        self.files: dict[str, list[str]] = {"/content/1.html": [], "/content/2.html": []}
        site.put("/list/", '<a href="/content/1.html">一</a><a href="/content/2.html">二</a>')

    def attach(self, page: str, path: str, body: bytes) -> None:
        self.site.put(path, body, content_type=FILE_TYPES[path[path.rfind(".") :]])
        if path not in self.files[page]:
            self.files[page].append(path)
        links = "".join(f'<p>附件：<a href="{p}">{p.rsplit("/", 1)[1]}</a></p>' for p in self.files[page])
        title = (
            "关于印发数字经济发展规划的通知" if page.endswith("1.html") else "关于公布数据要素试点名单的通知"
        )
        html = gov_cn_page(title, ["现将有关文件印发给你们，请认真贯彻执行。各地区要结合实际抓好落实。"])
        self.site.put(page, _with_links(html, links))

    def cycle(self):  # type: ignore[no-untyped-def]
        summary = run_cycle(self.config, self.engine)
        assert summary.errors == 0, summary.failures
        return summary

    def events(self, kind: str) -> list[ChangeEvent]:
        with session_factory(self.engine)() as session:
            rows = session.scalars(
                select(ChangeEvent).where(ChangeEvent.kind == kind).order_by(ChangeEvent.id)
            )
            return list(rows)


def _with_links(html: str, links: str) -> str:
    """The attachment links at the end of the body container (where gov.cn prints them)."""
    body = html.index('id="UCAP-CONTENT">')
    end = html.index("</div>", body)
    return html[:end] + links + html[end:]


@pytest.fixture
def files_world(site: LocalSite, db_url: str) -> Iterator[FileWorld]:
    world = FileWorld(site, db_url)
    yield world
    world.engine.dispose()


def test_attachments_are_documents_versioned_diffed_and_alerted(files_world: FileWorld) -> None:
    w = files_world
    w.attach("/content/1.html", "/files/plan.pdf", make_pdf())
    w.attach("/content/1.html", "/files/plan.docx", make_docx())
    w.attach("/content/2.html", "/files/list.xlsx", make_xlsx())
    w.attach("/content/2.html", "/files/list.ofd", make_ofd())
    first = w.cycle()
    assert first.baseline == 6  # two notices and their four files
    with session_factory(w.engine)() as session:
        docs = {d.url: d for d in session.scalars(select(Document))}
        page1 = docs[w.site.url("/content/1.html")]
        pdf = docs[w.site.url("/files/plan.pdf")]
        assert pdf.attachment_of == page1.id and page1.attachment_of is None
        assert docs[w.site.url("/files/list.ofd")].attachment_of == docs[w.site.url("/content/2.html")].id
        # The PDF's text is a version of its own; search finds a phrase that only the PDF holds.
        found = search_documents(session, "建成35个数字经济示范区")
        assert {r["url"] for r in found} >= {w.site.url("/files/plan.pdf")}

    # Files re-generated with other metadata: no event. An edited number in the PDF and in the DOCX:
    # exactly two changed events, with the files' URLs; a third file on a known page: one new event.
    w.attach("/content/1.html", "/files/plan.pdf", make_pdf(producer="另一个生成器", creator="Office"))
    w.attach("/content/2.html", "/files/list.ofd", make_ofd(doc_id="ffff", created="2025-01-01"))
    quiet = w.cycle()
    assert (quiet.changed, quiet.new) == (0, 0)
    edited = [p.replace("35个", "50个") for p in PARAGRAPHS]
    w.attach("/content/1.html", "/files/plan.pdf", make_pdf(edited))
    w.attach("/content/1.html", "/files/plan.docx", make_docx(edited, author="李四", revision=2))
    summary = w.cycle()
    changed = w.events("changed")
    assert sorted(e.url for e in changed) == sorted(
        w.site.url(p) for p in ("/files/plan.docx", "/files/plan.pdf")
    )
    assert all(e.attachment_of == page1.id and "附件：plan." in (e.title or "") for e in changed)
    assert summary.changed == 2 and summary.new == 0
    # Each change's diff shows the old and the new figure, in the sentence that holds them.
    with session_factory(w.engine)() as session:
        for event in changed:
            old = session.get(DocumentVersion, event.old_version_id)
            new_version = session.get(DocumentVersion, event.new_version_id)
            diff = diff_versions(old, new_version)
            ops = [(c.old or "", c.new or "") for c in diff.changes]
            assert any("35个" in o and "50个" in n for o, n in ops), ops
    with session_factory(w.engine)() as session:
        rows = {r["url"]: r for r in list_changes(session)}
    assert rows[w.site.url("/files/plan.pdf")]["attachment_of"] == page1.id
    # The web app lists it as the notice's attachment (HTML and API).
    from fastapi.testclient import TestClient

    from policywatch.web import create_app

    with TestClient(create_app(w.engine)) as client:
        api = {c["url"]: c for c in client.get("/api/changes").json()["items"]}
        page = client.get("/changes").text
    assert api[w.site.url("/files/plan.pdf")]["attachment_of"] == page1.id
    assert f'附件 of <a href="/documents/{page1.id}"' in page or f'/documents/{page1.id}">#{page1.id}' in page
    # A third file on a known page: a new event for the file, with attachment_of (the page's text
    # changed too: its body now names the file).
    w.attach("/content/2.html", "/files/extra.pdf", make_pdf(["补充通知：数据要素登记工作延长至2025年底。"]))
    w.cycle()
    [new] = w.events("new")
    assert new.url == w.site.url("/files/extra.pdf")
    with session_factory(w.engine)() as session:
        page2 = session.scalar(select(Document).where(Document.url == w.site.url("/content/2.html")))
        assert page2 is not None and new.attachment_of == page2.id


def test_a_file_linked_after_the_body_is_found_on_a_page_the_fast_path_would_skip(
    files_world: FileWorld,
) -> None:
    """Some templates print the 附件 list after the body container: adding a file there changes no
    text of the page, yet the page must be read again (the fast path's evidence covers file links)."""
    w = files_world
    w.attach("/content/1.html", "/files/plan.pdf", make_pdf())
    w.attach("/content/2.html", "/files/list.xlsx", make_xlsx())
    w.cycle()
    page = w.site.pages["/content/2.html"]
    html = page.body.decode("utf-8")  # type: ignore[union-attr]
    after_body = '<div class="fj">附件下载：<a href="/files/late.pdf">补充说明</a></div>'
    w.site.put(
        "/files/late.pdf", make_pdf(["补充说明：试点名单自公布之日起施行。"]), content_type="application/pdf"
    )
    w.site.put(
        "/content/2.html", html.replace('<div class="editor">', after_body + '<div class="editor">', 1)
    )
    summary = w.cycle()
    [new] = w.events("new")
    assert new.url == w.site.url("/files/late.pdf") and summary.changed == 0


def test_a_hostile_file_is_a_fetch_error_naming_it_and_the_rest_goes_on(files_world: FileWorld) -> None:
    import io
    import zipfile

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (400 * 1024 * 1024))  # 400 MiB of zeros, ~400 KB packed
    w = files_world
    w.attach("/content/1.html", "/files/plan.pdf", make_pdf())
    w.attach("/content/2.html", "/files/plan.docx", bomb.getvalue())
    summary = run_cycle(w.config, w.engine)
    [failure] = summary.failures
    assert failure["url"].endswith("/files/plan.docx") and "plan.docx" in failure["error"]
    assert summary.baseline == 3  # both notices and the PDF
