"""One vocabulary (storage.vocabulary): the places that show or accept its words agree with it."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import storage.vocabulary as vocabulary
from storage.vocabulary import CURRENT_MARKS, EventKind, Mark, MarkFilter

ROOT = Path(__file__).resolve().parent.parent


def test_the_examples_in_the_vocabulary_run() -> None:
    result = doctest.testmod(vocabulary)
    assert result.failed == 0 and result.attempted >= 2


def test_a_member_is_its_string() -> None:
    assert EventKind.NEW == "new" and f"{EventKind.CHANGED}" == "changed"
    assert str(Mark.NOT_SIGNIFICANT) == "not_significant"
    assert [str(m) for m in MarkFilter] == [*CURRENT_MARKS, "unreviewed"]


def test_the_web_pages_colour_each_kind_as_the_vocabulary_does() -> None:
    base = (ROOT / "policywatch" / "web" / "templates" / "base.html").read_text(encoding="utf-8")
    css = dict(re.findall(r"\.kind-(\w+) \{ background:(#[0-9a-f]{6}); \}", base))
    assert css == {kind.value: kind.colour for kind in EventKind}
    document = (ROOT / "policywatch" / "web" / "templates" / "document.html").read_text(encoding="utf-8")
    swatches = {
        name: colour for colour, name in re.findall(r'background:(#[0-9a-f]{6})"></i>(\w+)<', document)
    }
    assert swatches == {kind.value: kind.colour for kind in EventKind}


def test_the_charts_and_the_command_line_take_their_words_from_it() -> None:
    from policywatch.cli import EVENT_KINDS as cli_kinds
    from policywatch.web.charts import KIND_COLOURS
    from policywatch.web.params import EVENT_KINDS as web_kinds

    assert list(cli_kinds) == list(web_kinds) == [k.value for k in EventKind]
    assert {k.value: k.colour for k in EventKind} == KIND_COLOURS


def test_the_alerts_and_the_triage_take_their_words_from_it() -> None:
    from alerts.marks import CLEARED, MARK_FILTERS, MARK_LABELS, MARKS
    from alerts.preferences import EVENT_KINDS

    assert MARKS == ("important", "reviewed", "not_significant") and CLEARED == "cleared"
    assert (*MARKS, "unreviewed") == MARK_FILTERS
    assert MARK_LABELS["not_significant"] == ("不重要", "not significant", "#8c959f")
    assert EVENT_KINDS == ("new", "changed", "removed", "restored", "republished", "important")


def test_the_mails_label_and_colour_each_kind_as_the_web_does() -> None:
    from alerts.render import KIND_COLOURS, KIND_LABELS
    from policywatch.web.charts import KIND_COLOURS as WEB_COLOURS

    assert KIND_COLOURS == WEB_COLOURS
    assert KIND_LABELS["changed"] == ("内容变更", "changed")


ROOT_PACKAGES = ("crawlers", "policywatch", "storage", "alerts")


def _sources() -> list[tuple[Path, str]]:
    return [
        (path, path.read_text(encoding="utf-8"))
        for package in ROOT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_every_fetch_error_kind_the_code_writes_is_in_the_vocabulary() -> None:
    """Static: the fetcher's _Failure kinds and the pipeline's _fail kinds (what error_kind holds)."""
    from storage.vocabulary import FetchErrorKind

    written: set[str] = set()
    for _, text in _sources():
        written |= set(re.findall(r'_Failure\(\s*"(\w+)"', text))
        written |= set(re.findall(r'self\._fail\([^)]*?,\s*"(\w+)"\)', text))
        written |= set(re.findall(r'error_kind="(\w+)"', text))
    assert written, "the patterns found nothing: the check would pass vacuously"
    assert written <= {k.value for k in FetchErrorKind}, written - {k.value for k in FetchErrorKind}


def test_every_diff_op_policydiff_produces_is_in_the_vocabulary() -> None:
    from policywatch.policydiff import diff_texts
    from storage.vocabulary import DiffOp

    old = ["第一条 数据要素。", "第二条 算力网络。", "第三条 保持不变。", "第四条 将被删除的条款内容。"]
    new = ["第二条 算力网络。", "第一条 数据要素。", "第三条 保持不变。", "第五条 新增的条款内容完全不同。"]
    ops = {block.op for block in diff_texts(old, new).blocks}
    assert len(ops) >= 3 and ops <= {o.value for o in DiffOp}, ops


def test_the_configuration_accepts_the_vocabularys_words() -> None:
    from policywatch import config_models
    from storage.vocabulary import SUBSCRIBABLE_EVENTS, ListingKind

    assert tuple(k.value for k in EventKind) == config_models.EVENT_KINDS
    assert tuple(str(e) for e in SUBSCRIBABLE_EVENTS) == config_models.SUBSCRIBABLE_EVENTS
    assert set(config_models.LISTING_KINDS) == {k.value for k in ListingKind}
