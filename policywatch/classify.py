"""The classify stage: turn what the version stage recorded into change events."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from policywatch.extraction import normalise_text
from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from storage.models import ChangeEvent, Document, DocumentVersion, utcnow

if TYPE_CHECKING:
    from policywatch.policydiff import DocumentDiff

SUMMARY_LIMIT = 240


# A changed event's diff is wanted three times: by the classify stage (significance, summary), by
# keyword matching when its alerts are queued (alerts.subscriptions) and by the alert e-mail
# (alerts.render), the last two in the same cycle when it delivers. A diff is a pure function of the
# two normalised texts, so the latest few are kept, keyed by those texts themselves (a version's
# text can be rewritten by `policywatch reextract` under the same id, so ids would not do) and by
# the diff function (another implementation, or a test's instrumented one, is another diff).
DIFF_CACHE_SIZE = 64
_diff_cache: OrderedDict[tuple[object, str, str, str, str], DocumentDiff] = OrderedDict()
_diff_cache_lock = threading.Lock()
diff_stats = {"computed": 0, "reused": 0}  # read by tests and benchmarks


def clear_diff_cache() -> None:
    """Forget the diffs kept (benchmarks time the diff itself; tests start clean)."""
    with _diff_cache_lock:
        _diff_cache.clear()


def diff_versions(old: DocumentVersion, new: DocumentVersion) -> DocumentDiff:
    """Diff two versions on their normalised text; the title is the first line so a retitle shows.

    Computed once per pair of texts: the same pair again (in this process) is the same diff."""
    from policywatch import policydiff  # imported when a cycle finds its first change

    diff_texts = policydiff.diff_texts
    old_title, new_title = normalise_text(old.title), normalise_text(new.title)
    key = (diff_texts, old_title, old.normalized_text or "", new_title, new.normalized_text or "")
    with _diff_cache_lock:
        diff = _diff_cache.get(key)
        if diff is not None:
            _diff_cache.move_to_end(key)
            diff_stats["reused"] += 1
            return diff
    diff = diff_texts([old_title, *old.normalized_paragraphs], [new_title, *new.normalized_paragraphs])
    with _diff_cache_lock:
        diff_stats["computed"] += 1
        _diff_cache[key] = diff
        while len(_diff_cache) > DIFF_CACHE_SIZE:
            _diff_cache.popitem(last=False)
    return diff


def summarise(diff: DocumentDiff, limit: int = SUMMARY_LIMIT) -> str:
    """One line for lists and subjects: the first changes, figures first-class ("35 → 50")."""
    parts: list[str] = []
    for block in diff.changes:
        if block.op == "replace" and block.spans:
            marks = []
            for span in block.spans[:3]:
                old = (block.old or "")[span.old_start : span.old_end]
                new = (block.new or "")[span.new_start : span.new_end]
                marks.append(f"{old or '∅'} → {new or '∅'}")
            parts.append("; ".join(marks))
        elif block.op == "insert":
            parts.append(f"+ {block.new}")
        elif block.op == "delete":
            parts.append(f"- {block.old}")
        elif block.op == "move":
            parts.append(f"moved: {block.new}")
        if sum(len(p) for p in parts) > limit:
            break
    text = f"{len(diff.changes)} change{'s' if len(diff.changes) != 1 else ''}: " + " | ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def make_event(
    kind: str,
    document: Document,
    *,
    old_version: DocumentVersion | None,
    new_version: DocumentVersion | None,
    diff: DocumentDiff | None = None,
    original: Document | None = None,
    classifier: RelevanceClassifier = DEFAULT_CLASSIFIER,
) -> ChangeEvent:
    version = new_version or old_version
    title = version.title if version else document.title
    # Relevance from the configuration's classifier (settings.relevance); the event keeps the deciding terms.
    relevance = classifier.classify(normalise_text(title or ""), version.normalized_text if version else "")
    if kind == "changed" and diff is not None:
        significance, summary = diff.significance, summarise(diff)
    elif kind == "restored" and diff is not None and diff.changes:
        significance, summary = max(diff.significance, 0.5), "back online, changed: " + summarise(diff)
    else:
        significance = 1.0 if kind in ("new", "removed") else 0.5
        summary = {
            "new": f"new document ({version.chars if version else 0} characters)",
            "removed": "the page is gone (confirmed not found)",
            "restored": "back online, text unchanged",
            "republished": f"repost of document {original.id}: {original.url}" if original else "repost",
        }.get(kind, kind)
    return ChangeEvent(
        kind=kind,
        source_id=document.source_id,
        document_id=document.id,
        url=document.url,
        title=title,
        old_version_id=old_version.id if old_version else None,
        new_version_id=new_version.id if new_version else None,
        detected_at=utcnow(),
        relevant=relevance.relevant,
        relevance_terms=list(relevance.terms[:8]),
        significance=round(min(max(significance, 0.0), 1.0), 4),
        summary=summary,
        original_document_id=original.id if original else None,
    )
