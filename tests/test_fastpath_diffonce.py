"""A changed page costs one diff: classify, keyword matching and every alert e-mail share it.

Before, the same DocumentDiff was computed by the classify stage, again by keyword matching when the
alerts were queued, and again for each e-mail rendered in the same cycle (policywatch.classify keeps
the latest diffs by their texts now).
"""

from __future__ import annotations

from typing import Any

import pytest

from policywatch import policydiff
from policywatch.classify import clear_diff_cache, diff_stats
from tests.support.smtp import SmtpServer
from tests.test_alerts import AlertWorld, smtp, subscriber, world

__all__ = ["smtp", "world"]  # fixtures, used by name


def test_a_changed_document_is_diffed_once_per_cycle(
    world: AlertWorld, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.subscribers = "\n".join(
        [
            subscriber("all@example.org"),
            subscriber("figures@example.org", keywords=["数字经济增加值"]),
            subscriber("also@example.org", keywords=["8355"]),
        ]
    )
    world.baseline()
    world.change_figure()
    clear_diff_cache()
    calls: list[int] = []
    real = policydiff.diff_texts

    def counting(*args: Any, **kwargs: Any) -> policydiff.DocumentDiff:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(policydiff, "diff_texts", counting)
    reused_before = diff_stats["reused"]
    summary = world.cycle()
    assert (summary.changed, summary.alerts_sent) == (1, 3)
    assert len(calls) == 1  # classify; keywords and the three e-mails reuse it
    assert diff_stats["reused"] - reused_before >= 4
    # The reused diff is the right one: every e-mail shows the change.
    for address in ("all@example.org", "figures@example.org", "also@example.org"):
        [mail] = smtp.sink.to(address)
        assert "[-8354-]{+8355+}" in mail.part("plain")


def test_another_pair_of_texts_is_another_diff() -> None:
    """The cache is keyed by the texts: a version rewritten under the same id is diffed anew."""
    from storage.models import DocumentVersion

    clear_diff_cache()

    def version(text: str) -> DocumentVersion:
        return DocumentVersion(id=1, title="标题", text=text, normalized_text=text)

    old = version("第一段。\n第二段有35个。")
    first = policydiff_summary(old, version("第一段。\n第二段有50个。"))
    second = policydiff_summary(old, version("第一段。\n第二段有60个。"))
    assert first != second and "50" in first and "60" in second


def policydiff_summary(old: Any, new: Any) -> str:
    from policywatch.classify import diff_versions, summarise

    return summarise(diff_versions(old, new))
