"""HTTP faults through a whole cycle: real local servers, `run_cycle` on SQLite and PostgreSQL.

Each test makes a baseline of two documents, then breaks one of them in one way and changes the
other. The broken one must give a fetch error with its reason in fetch_attempts and nothing else
(no version, no change, no removal); the cycle must go on and report the other one's change; and
once the page is healthy again it is simply unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.pipeline import CycleSummary
from storage.models import Document, DocumentVersion, FetchAttempt
from tests.support import world as harness
from tests.support.site import LocalSite, Page, RequestInfo

PARAS = corpus_paragraphs("004")
MAX_BODY = 300_000


def doc_a(changed: bool = False) -> str:
    paras = PARAS[1:30] + (["第九十九条 本通知自印发之日起施行。"] if changed else [])
    return gov_cn_page("关于加快数字经济发展的通知", paras, doc_number="国发〔2024〕1号", counter=7)


def doc_b(counter: int = 1) -> str:
    return gov_cn_page(
        "关于数据要素市场化配置的意见", PARAS[30:70], doc_number="国发〔2024〕2号", counter=counter
    )


@dataclass
class FaultWorld(harness.World):
    """One source, `faults`, with short timeouts and a small body limit, listing a (on the site)
    and b (at `b_url`: on the site unless a test puts it elsewhere)."""

    b_url: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.b_url:
            self.b_url = self.site.url("/content/b.html")

    def config_text(self) -> str:
        return harness.sources_yaml(
            harness.source_entry(self.site, "faults", "故障站"),
            settings={
                "connect_timeout_s": 0.5,
                "read_timeout_s": 0.5,
                "max_attempts": 2,
                "backoff_base_s": 0.01,
                "max_body_bytes": MAX_BODY,
            },
        )

    def list_docs(self, *urls: str) -> None:
        """List `urls` (no titles)."""
        self.put_listing_page(harness.numbered(urls))

    def baseline(self, serve_b: bool = True) -> None:
        """Serve a (and b, with `serve_b`), list both and record them: the silent baseline."""
        self.list_docs(self.site.url("/content/a.html"), self.b_url)
        self.site.put("/content/a.html", doc_a())
        if serve_b:
            self.site.put("/content/b.html", doc_b())
        first = self.cycle()
        assert (first.baseline, first.errors) == (2, 0), first.failures

    def doc_id(self, url: str) -> int:
        return self.document(url).id

    def versions(self, doc_id: int) -> int:
        return self.count(DocumentVersion, DocumentVersion.document_id == doc_id)

    events = harness.World.event_pairs

    def last_attempt(self, url: str) -> FetchAttempt:
        """The latest fetch attempt of `url`."""
        with self.sessions() as s:
            attempt = s.scalar(
                select(FetchAttempt).where(FetchAttempt.url == url).order_by(FetchAttempt.id.desc())
            )
        assert attempt is not None, url
        return attempt

    def status(self, doc_id: int) -> str:
        with self.sessions() as s:
            doc = s.get(Document, doc_id)
            assert doc is not None
            return doc.status

    def break_b_and_check(self, kind: str, reason: str) -> CycleSummary:
        """Run the cycle with b broken and a changed; check what it recorded."""
        a_id, b_id = self.doc_id(self.site.url("/content/a.html")), self.doc_id(self.b_url)
        self.site.put("/content/a.html", doc_a(changed=True))
        summary = self.cycle()
        # The broken page: a fetch error with its reason, nothing else.
        assert summary.errors == 1, summary.failures
        assert [f["url"] for f in summary.failures] == [self.b_url]
        assert reason in summary.failures[0]["error"]
        attempt = self.last_attempt(self.b_url)
        assert (attempt.outcome, attempt.error_kind) == ("error", kind), (attempt.outcome, attempt.error)
        assert attempt.error and reason in attempt.error
        assert self.versions(b_id) == 1
        assert self.events(b_id) == []
        assert self.status(b_id) == "active"
        assert summary.removed == 0
        # The cycle went on: the other document's change is there.
        assert summary.changed == 1
        assert self.events() == [("changed", a_id)]
        return summary

    def heal_b_and_check(self) -> None:
        self.site.put("/content/b.html", doc_b(counter=99))
        again = self.cycle()
        assert (again.errors, again.changed, again.new, again.removed) == (0, 0, 0, 0), again.failures
        assert again.unchanged == 2
        assert self.versions(self.doc_id(self.b_url)) == 1


@pytest.fixture
def world(site: LocalSite, db_url: str) -> Iterator[FaultWorld]:
    with FaultWorld(site, db_url) as w:
        yield w


# --- the network ------------------------------------------------------------------------------


class Blackhole:
    """A listening socket on 127.0.0.1 that never accepts: its accept queue is full, so a new
    connection's SYN is dropped and the client's connect times out (nothing leaves the machine)."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # the connection completes in the backlog
                filler.connect(("127.0.0.1", self.port))
            self.fillers.append(filler)
        time.sleep(0.05)

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.sock.close()


def test_connect_timeout(db_url: str) -> None:
    listing_site, b_site = LocalSite(), LocalSite()
    try:
        world = FaultWorld(listing_site, db_url, b_url=b_site.url("/content/b.html"))
        b_site.put("/content/b.html", doc_b())
        world.baseline(serve_b=False)
        port = b_site.server.server_address[1]
        b_site.close()
        hole = Blackhole(port)
        try:
            world.break_b_and_check("timeout", "connect timeout")
        finally:
            hole.close()
        world.engine.dispose()
    finally:
        listing_site.close()


def test_server_dripping_slower_than_the_read_timeout(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    # Every byte comes later than the read timeout (0.5 s) after the one before.
    site.put("/content/b.html", doc_b(), drip_interval_s=0.8, drip_chunk=200)
    world.break_b_and_check("timeout", "read timeout")
    world.heal_b_and_check()


def test_server_dripping_just_inside_the_read_timeout(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    # Each piece arrives within the read timeout, but the whole body would take minutes: the total
    # time limit of a request ends it.
    site.put("/content/b.html", doc_b(), drip_interval_s=0.2, drip_chunk=100)
    world.break_b_and_check("timeout", "read timeout")
    world.heal_b_and_check()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error(world: FaultWorld, site: LocalSite, status: int) -> None:
    world.baseline()
    site.put("/content/b.html", "<html><body>Internal error</body></html>", status=status)
    world.break_b_and_check("http", f"HTTP {status} after 2 attempts")
    assert site.hits["/content/b.html"] == 1 + 2  # the baseline, then one retry
    world.heal_b_and_check()


def test_429_with_retry_after(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    site.put(
        "/content/b.html",
        "<html><body>Too many requests</body></html>",
        status=429,
        headers={"Retry-After": "1"},
    )
    world.break_b_and_check("http", "HTTP 429 after 2 attempts")
    asked = [r.at for r in site.requests if r.path == "/content/b.html"][-2:]
    assert asked[1] - asked[0] >= 0.95  # the retry waited as long as the server asked
    world.heal_b_and_check()


def test_redirect_loop(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    site.put("/content/b.html", "", status=302, headers={"Location": "/content/b2.html"})
    site.put("/content/b2.html", "", status=301, headers={"Location": "/content/b.html"})
    world.break_b_and_check("redirect", "redirect loop")
    world.heal_b_and_check()


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "read-until-close"])
def test_body_over_the_size_limit(world: FaultWorld, site: LocalSite, send_length: bool) -> None:
    world.baseline()
    huge = doc_b().replace("</body>", "<p>" + "数字经济" * (MAX_BODY // 4) + "</p></body>")
    site.put("/content/b.html", huge, send_length=send_length)
    world.break_b_and_check("too_large", f"body over {MAX_BODY} bytes")
    world.heal_b_and_check()


def test_truncated_body_shorter_than_its_content_length(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    body = doc_b().encode()
    # The server promises the whole page, sends 40% of it and hangs up.
    site.put(
        "/content/b.html",
        body[: len(body) * 2 // 5],
        send_length=False,
        headers={"Content-Length": str(len(body))},
    )
    world.break_b_and_check("connection", "connection broken")
    world.heal_b_and_check()


def test_truncated_html_read_until_close(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    body = doc_b().encode()
    # No Content-Length: the body ends when the server closes, here in the middle of the text.
    site.put("/content/b.html", body[: len(body) * 3 // 5], send_length=False)
    world.break_b_and_check("truncated", "truncated")
    world.heal_b_and_check()


def test_invalid_bytes_for_the_declared_charset(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    body = doc_b().encode("utf-8")
    # A few bytes in the middle of the text are not UTF-8 although the page says it is.
    middle = body.index("数据".encode()) + len(body) // 3
    middle = body.index("。".encode(), middle)
    broken = body[:middle] + b"\xff\xfe\x80" + body[middle:]
    site.put("/content/b.html", broken, content_type="text/html; charset=utf-8")
    world.break_b_and_check("encoding", "invalid bytes")
    world.heal_b_and_check()


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
            "text/html; charset=utf-8",
            "application/pdf",
        ),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40), "image/png", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(40), "text/html", "image/jpeg"),
    ],
    ids=["pdf-as-html", "pdf", "png", "jpeg-as-html"],
)
def test_pdf_or_image_at_an_html_url(
    world: FaultWorld, site: LocalSite, body: bytes, content_type: str, reason: str
) -> None:
    world.baseline()
    site.put("/content/b.html", body, content_type=content_type)
    world.break_b_and_check("not_html", reason)
    world.heal_b_and_check()


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "], ids=["empty", "whitespace"])
def test_empty_200(world: FaultWorld, site: LocalSite, body: bytes) -> None:
    world.baseline()
    site.put("/content/b.html", body)
    world.break_b_and_check("empty", "empty body")
    world.heal_b_and_check()


def test_html_without_any_body_text(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    site.put("/content/b.html", "<html><head><title>x</title></head><body><div></div></body></html>")
    world.break_b_and_check("extract", "no body text")
    world.heal_b_and_check()


# --- the listing ------------------------------------------------------------------------------


def test_listing_that_suddenly_lists_nothing(world: FaultWorld, site: LocalSite) -> None:
    world.baseline()
    a_id, b_id = world.doc_id(site.url("/content/a.html")), world.doc_id(world.b_url)
    # A redesign or an error page served with 200: no document links at all.
    site.put("/list/", "<html><body><p>系统维护中，请稍后访问</p></body></html>")
    site.put("/content/a.html", doc_a(changed=True))
    summary = world.cycle()
    assert summary.removed == 0
    assert [f["url"] for f in summary.failures] == [site.url("/list/")]
    assert "no document links" in summary.failures[0]["error"]
    attempt = world.last_attempt(site.url("/list/"))
    assert (
        attempt.outcome == "error"
        and attempt.error_kind == "listing"
        and "no document links" in attempt.error
    )
    # The documents already known are still checked (and found, so never removed).
    assert world.status(a_id) == world.status(b_id) == "active"
    assert world.events() == [("changed", a_id)]
    assert world.versions(b_id) == 1


@pytest.mark.parametrize("status", [404, 500])
def test_listing_that_fails(world: FaultWorld, site: LocalSite, status: int) -> None:
    world.baseline()
    a_id = world.doc_id(site.url("/content/a.html"))
    site.put("/list/", "<html><body>error</body></html>", status=status)
    site.put("/content/a.html", doc_a(changed=True))
    summary = world.cycle()
    assert summary.removed == 0
    assert [f["url"] for f in summary.failures] == [site.url("/list/")]
    attempt = world.last_attempt(site.url("/list/"))
    assert attempt.outcome == "error" and attempt.status == status
    assert world.events() == [("changed", a_id)]


def test_every_fault_at_once_in_one_cycle(world: FaultWorld, site: LocalSite) -> None:
    """Many broken pages in one cycle: each is its own error, the healthy page still gets through."""
    faults: dict[str, Page] = {
        "/content/e500.html": Page(body=b"oops", status=500),
        "/content/empty.html": Page(body=b""),
        "/content/pdf.html": Page(body=b"%PDF-1.4\n", headers={"Content-Type": "application/pdf"}),
        "/content/loop.html": Page(status=302, headers={"Location": "/content/loop.html?x=1"}),
    }

    def loop_back(_: RequestInfo) -> Page:
        return Page(status=302, headers={"Location": "/content/loop.html"})

    world.list_docs(*(site.url(p) for p in ["/content/a.html", *faults]))
    site.put("/content/a.html", doc_a())
    for path, page in faults.items():
        site.pages[path] = page
    site.pages["/content/loop.html?x=1"] = loop_back
    summary = world.cycle()
    assert summary.baseline == 1
    assert sorted(f["url"] for f in summary.failures) == sorted(site.url(p) for p in faults)
    with world.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 1
        assert s.scalar(select(func.count()).select_from(DocumentVersion)) == 1
