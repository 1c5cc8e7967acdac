"""The classify stage: turn what the version stage recorded into change events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from extraction import normalise_text
from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from storage.models import ChangeEvent, Document, DocumentVersion, utcnow

if TYPE_CHECKING:
    from policydiff import DocumentDiff

SUMMARY_LIMIT = 240


def diff_versions(old: DocumentVersion, new: DocumentVersion) -> DocumentDiff:
    """Diff two versions on their normalised text; the title is the first line so a retitle shows."""
    from policydiff import diff_texts  # imported when a cycle finds its first change

    return diff_texts(
        [normalise_text(old.title), *old.normalized_paragraphs],
        [normalise_text(new.title), *new.normalized_paragraphs],
    )


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
