"""What a recorded observation means: the events it makes (new, republished, changed, restored,
removed) and their alerts, queued in the transaction that records them.

Part of the version stage's one writer (policywatch.versioning.DocumentProcessor, whose mixin this
is): apart from it so that the meaning of an outcome, which the analysts and the subscribers see,
reads on its own, away from the batching and transactions. The diff behind a `changed` event is
policywatch.classify's; queueing the alerts is alerts.subscriptions', exactly once with the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from alerts.subscriptions import ActiveSubscriber, active_subscribers, queue_alerts
from crawlers import FetchResult
from policywatch.attachments import file_name
from policywatch.classify import diff_versions, make_event
from policywatch.config import SourceConfig
from policywatch.observe import Target
from policywatch.relevance import RelevanceClassifier
from policywatch.summary import CycleSummary
from storage import store
from storage.models import ChangeEvent, Document, DocumentVersion


class EventsMixin:
    """DocumentProcessor's events: `_classify` (a page read in full), `_gone` (a page not found)."""

    # DocumentProcessor's (policywatch.versioning).
    source: SourceConfig
    summary: CycleSummary
    silent: bool
    classifier: RelevanceClassifier
    subscribers: Sequence[ActiveSubscriber] | None
    attachment_parents: dict[str, int]
    _session: Session | None
    _page_titles: dict[int, str]

    if TYPE_CHECKING:

        def _fail(
            self, session: Session, target: Target, result: FetchResult, reason: str, kind: str | None = None
        ) -> None: ...

    def _event(self, kind: str, document: Document, **details: Any) -> ChangeEvent:
        event = make_event(kind, document, classifier=self.classifier, **details)
        if document.attachment_of is not None:
            # An attachment's alert names the notice it belongs to and the file.
            event.attachment_of = document.attachment_of
            page = self._page_titles.get(document.attachment_of)
            if page is None:
                page_doc = self._session.get(Document, document.attachment_of) if self._session else None
                page = page_doc.title if page_doc is not None and page_doc.title else ""
                self._page_titles[document.attachment_of] = page
            name = file_name(document.url)
            event.title = f"{page}｜附件：{name}" if page else f"附件：{name}"
        return event

    def _queue_alerts(self, session: Session, event: ChangeEvent) -> None:
        """The event's outbox rows, in the event's own transaction (exactly once, see alerts)."""
        if self.subscribers is None:
            self.subscribers = active_subscribers(session)
        if self.subscribers:
            queue_alerts(session, event, self.subscribers)

    def _classify(self, session: Session, outcome: store.ContentOutcome) -> str:
        summary, doc = self.summary, outcome.document
        events = []
        if outcome.kind == "first":
            from policywatch import reposts  # numpy: only when a cycle finds a new text

            # Index the text (MinHash bands) so later reposts of it are found, baseline included.
            keys = reposts.index_version(session, outcome.new_version)
            if self.silent:
                summary.baseline += 1
                return "baseline"
            reposts.backfill(session)  # versions indexed late: new texts of changed documents
            match = reposts.find_original(session, outcome.new_version, keys)
            original = match.document if match is not None else None
            if original is not None:
                doc.republished_of_id = original.id
                events.append(
                    self._event(
                        "republished",
                        doc,
                        old_version=None,
                        new_version=outcome.new_version,
                        original=original,
                    )
                )
                summary.republished += 1
                kind = "republished"
            else:
                events.append(self._event("new", doc, old_version=None, new_version=outcome.new_version))
                summary.new += 1
                kind = "new"
        elif outcome.kind == "changed":
            assert outcome.old_version is not None
            if outcome.new_version.chars * 2 < outcome.old_version.chars:
                summary.shrunk += 1
            diff = diff_versions(outcome.old_version, outcome.new_version)
            if outcome.was_removed:
                events.append(
                    self._event(
                        "restored",
                        doc,
                        old_version=outcome.old_version,
                        new_version=outcome.new_version,
                        diff=diff,
                    )
                )
                summary.restored += 1
            events.append(
                self._event(
                    "changed",
                    doc,
                    old_version=outcome.old_version,
                    new_version=outcome.new_version,
                    diff=diff,
                )
            )
            summary.changed += 1
            kind = "changed"
        else:
            if outcome.was_removed:
                events.append(
                    self._event(
                        "restored", doc, old_version=outcome.old_version, new_version=outcome.new_version
                    )
                )
                summary.restored += 1
                kind = "restored"
            else:
                summary.unchanged += 1
                kind = "unchanged"
        if self.silent:
            return kind
        for event in events:
            store.add_event(session, event)
            self._queue_alerts(session, event)
        return kind

    def _gone(
        self, session: Session, target: Target, result: FetchResult, reason: str = "listed link is not found"
    ) -> None:
        source_id, summary = self.source.id, self.summary
        if target.document_id is None:
            if target.url in self.attachment_parents:
                # A page links a file that is not there: the page's problem, noted, not a failure of
                # the cycle (and not a document until it answers).
                store.record_attempt(session, source_id, None, result, "dead_link")
                return
            # A listed link that answers "not found": the listing is stale, not a removal.
            self._fail(session, target, result, reason, "gone")
            return
        self.summary.succeeded += 1
        doc = store.mark_removed(session, target.document_id, result)
        store.record_attempt(session, source_id, target.document_id, result, "removed")
        if doc is None:
            return
        summary.removed += 1
        if not self.silent:
            current = session.get(DocumentVersion, doc.current_version_id) if doc.current_version_id else None
            removed = self._event("removed", doc, old_version=current, new_version=None)
            self._queue_alerts(session, store.add_event(session, removed))
