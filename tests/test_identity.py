"""Document identity: 发文字号 in every form, and a moved document keeping its history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from policywatch.cli import main
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.identity import issuer_of_prefix, number_key, parse_number, same_identity, title_key
from storage.models import Document, DocumentUrl, DocumentVersion
from tests.support import world as harness
from tests.support.site import LocalSite

# --- 发文字号 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "printed",
    [
        "国办函〔2024〕3号",
        "国办函[2024]3号",
        "国办函【2024】3号",
        "国办函(2024)3号",
        "国办函（2024）3号",
        "国办函［2024］3号",
        "国办函﹝2024﹞3号",
        "国办函〔2024〕第3号",
        "国办函[2024]第3号",
        "国办函【2024】第3号",
        "国办函(2024)第3号",
        "国办函（2024）第03号",
        "国办函 〔2024〕 第 3 号",
        "国办函〔２０２４〕３号",  # full-width digits
    ],
)
def test_every_bracket_form_is_one_number(printed: str) -> None:
    number = parse_number(f"发文字号：{printed}")
    assert number is not None
    assert (number.prefix, number.year, number.serial) == ("国办函", 2024, 3)
    assert number.canonical == "国办函〔2024〕3号"
    assert number.issuer == "国务院办公厅"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("根据国发〔2021〕29号文件精神", "国发〔2021〕29号"),  # lead-in words are not the issuer
        ("工信部联规〔2021〕182号", "工信部联规〔2021〕182号"),
        ("赣府发[2022]11号", "赣府发〔2022〕11号"),
        ("黔府办发（2024）第8号", "黔府办发〔2024〕8号"),
        ("发改数据〔2023〕1770号", "发改数据〔2023〕1770号"),
        ("〔2021〕29号", None),  # no issuer: not a document number
        ("2021年第29号公告", None),
        ("", None),
    ],
)
def test_numbers_in_running_text(text: str, canonical: str | None) -> None:
    assert number_key(text) == canonical


def test_issuers_of_number_prefixes() -> None:
    assert issuer_of_prefix("国发") == "国务院"
    assert (
        issuer_of_prefix("国办发") == "国务院办公厅"
    )  # the longest prefix wins over 国发? no: 国办发 itself
    assert issuer_of_prefix("工信部联规") == "工业和信息化部"
    assert issuer_of_prefix("工信厅信管函") == "工业和信息化部办公厅"
    assert issuer_of_prefix("赣府厅字") == "江西省人民政府办公厅"
    assert issuer_of_prefix("某某发") is None


def test_same_identity() -> None:
    title = "国务院关于印发“十四五”数字经济发展规划的通知"
    assert same_identity(
        "国发〔2021〕29号", title, "国发(2021)第29号", '国务院关于印发"十四五"数字经济发展规划的通知'
    )
    assert same_identity(
        "国发〔2021〕29号", title, "国发[2021]29号", " 国务院关于印发“十四五”数字经济 发展规划的通知 "
    )
    assert not same_identity("国发〔2021〕29号", title, "国发〔2021〕30号", title)
    assert not same_identity("国发〔2021〕29号", title, "国发〔2021〕29号", "国务院关于印发规划的通知")
    assert not same_identity(None, title, None, title)  # no number, no identity
    assert title_key("《数字中国》建设 规划") == title_key("数字中国建设规划")


# --- a moved document keeps its history -----------------------------------------------------------------

TITLE = "江西省人民政府关于印发江西省“十四五”数字经济发展规划的通知"
NUMBER = "赣府发〔2022〕11号"
PARAS = corpus_paragraphs("004")[1:30]


class World(harness.World):
    """One source, `province`, listed at /list/ with titles, following /content/ and /new/ links.
    Its cycles must have no fetch error."""

    clean_cycles = True

    def config_text(self) -> str:
        return harness.sources_yaml(
            harness.source_entry(self.site, "province", "省政府", link_pattern="/(content|new)/"),
            settings={"backoff_base_s": 0.01, "max_attempts": 1},
        )

    def listing(self, *entries: tuple[str, str]) -> None:
        """List each (path, title)."""
        self.put_listing_page(entries)

    def page(
        self, path: str, number: str | None = NUMBER, title: str = TITLE, paras: list[str] = PARAS
    ) -> None:
        """Serve a Jiangxi provincial document at `path`."""
        self.site.put(
            path, gov_cn_page(title, paras, doc_number=number, issuer="江西省人民政府", pub_date="2022-05-26")
        )

    def kinds(self) -> list[str]:
        """The kind of every change event, oldest first."""
        return [kind for kind, _ in self.event_pairs()]

    def history(
        self, ref: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> dict[str, Any]:
        """What `policywatch history REF --json` prints."""
        monkeypatch.setenv("POLICYWATCH_DATABASE_URL", self.url)
        assert main(["history", ref, "--json"]) == 0
        return json.loads(capsys.readouterr().out)


@pytest.fixture
def world(site: LocalSite, db_url: str) -> Iterator[World]:
    with World(site, db_url) as w:
        yield w


def baseline(world: World) -> None:
    world.listing(("/content/1.html", TITLE))
    world.page("/content/1.html")
    assert world.cycle().baseline == 1


def test_a_redirect_moves_the_document(world: World, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    baseline(world)
    world.site.put("/content/1.html", b"", status=301, headers={"Location": "/new/2024/1.html"})
    world.page("/new/2024/1.html")
    world.listing(("/new/2024/1.html", TITLE))
    summary = world.cycle()
    assert (summary.new, summary.changed, summary.removed, summary.republished) == (0, 0, 0, 0)
    assert world.kinds() == []  # a move is not an event
    assert world.count(Document) == 1 and world.count(DocumentVersion) == 1
    history = world.history(
        world.site.url("/content/1.html"), capsys, monkeypatch
    )  # the old URL still finds it
    assert history["url"] == world.site.url("/new/2024/1.html")
    assert len(history["versions"]) == 1


def test_same_number_and_title_at_a_new_address(world: World, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    baseline(world)
    # The site moves the document: the old address is gone, the listing shows the new one, with
    # the number printed in another bracket form.
    world.site.remove("/content/1.html")
    world.site.put(
        "/new/2024/7.html",
        gov_cn_page(
            TITLE, PARAS, doc_number="赣府发[2022]第11号", issuer="江西省人民政府", pub_date="2022-05-26"
        ),
    )
    world.listing(("/new/2024/7.html", TITLE))
    summary = world.cycle()
    assert (summary.new, summary.removed, summary.republished, summary.restored) == (0, 0, 0, 0)
    assert world.kinds() == []
    assert world.count(Document) == 1
    history = world.history(world.site.url("/new/2024/7.html"), capsys, monkeypatch)
    assert history["url"] == world.site.url("/new/2024/7.html") and len(history["versions"]) == 1
    # The history goes on at the new address: an edit there is a change of the same document.
    world.site.put(
        "/new/2024/7.html",
        gov_cn_page(
            TITLE, [p.replace("8354", "8500") for p in PARAS], doc_number=NUMBER, issuer="江西省人民政府"
        ),
    )
    assert world.cycle().changed == 1
    assert world.kinds() == ["changed"]
    history = world.history(world.site.url("/content/1.html"), capsys, monkeypatch)
    assert len(history["versions"]) == 2


def test_a_listing_title_cut_short_still_pairs_the_move(world: World) -> None:
    baseline(world)
    world.site.remove("/content/1.html")
    world.page("/new/2024/7.html")
    world.listing(("/new/2024/7.html", TITLE[:16] + "…"))
    world.cycle()
    assert world.kinds() == [] and world.count(Document) == 1


def test_when_the_old_address_is_reported_gone_first_the_history_still_continues(world: World) -> None:
    """Without a listing title to pair them (a link text that is not the title), the old URL is
    checked first and reported removed; the same number and title at the new URL then bring the
    same document back: one document, its history whole."""
    baseline(world)
    world.site.remove("/content/1.html")
    world.page("/new/2024/7.html")
    world.listing(("/new/2024/7.html", "详情"))
    world.cycle()
    assert world.kinds() == ["removed", "restored"]
    assert world.count(Document) == 1 and world.count(DocumentVersion) == 1
    assert world.count(DocumentUrl) == 2


def test_same_title_with_another_number_is_another_document(world: World) -> None:
    baseline(world)
    # The same title re-issued the next year, the same text but for its figures.
    world.page(
        "/content/2.html", number="赣府发〔2023〕5号", paras=[p.replace("2022", "2023") for p in PARAS]
    )
    world.listing(("/content/1.html", TITLE), ("/content/2.html", TITLE))
    summary = world.cycle()
    assert summary.new == 1 and world.count(Document) == 2
    assert world.kinds() == ["new"]


def test_a_dropped_document_whose_title_reappears_with_another_number_is_not_merged(world: World) -> None:
    baseline(world)
    world.site.remove("/content/1.html")
    world.page("/new/2024/9.html", number="赣府发〔2024〕2号")
    world.listing(("/new/2024/9.html", TITLE))
    world.cycle()  # paired by title for the cycle, but the fetch shows another 发文字号
    assert world.count(Document) == 2
    # The same text with another number is no repost either; the old address, checked in the same
    # turn as the new one, is gone.
    assert world.kinds() == ["new", "removed"]
    world.cycle()
    assert world.kinds() == ["new", "removed"]
