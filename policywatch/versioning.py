"""The version stage: the one writer of a cycle's documents, versions, events and alerts.

Everything after the observe stage runs here, on the thread that calls `process_targets`
(policywatch.pipeline): an observation is recorded as a document's new version (or a page seen
again, a failure, a removal, a move), diffed, classified, and its alerts queued, in batched
transactions that are whole or absent. One class, `DocumentProcessor`, is that writer; it is split
over three modules only by what a reader looks for: this one holds the batches and transactions and
the recording of one page read in full (`_process`); policywatch.versioning_events what an outcome
means (the events and their alerts, removals included); policywatch.versioning_moves how a possible
move is decided (a document's URL and the new URL that may be its new address). The other two are
mixins of `DocumentProcessor`, sharing its open batch: none of them is used alone.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from alerts.subscriptions import ActiveSubscriber
from crawlers import FetchResult, canonical_url
from policywatch.attachments import MAX_ATTACHMENTS_PER_PAGE, file_revision, is_file_target
from policywatch.config import SourceConfig
from policywatch.extraction import EXTRACTOR_REVISION
from policywatch.identity import moved_document, redirected_home
from policywatch.observe import Observation, Target
from policywatch.planning import url_host
from policywatch.policy_graph import Resolver, record_references
from policywatch.reextract import refresh_current_version
from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from policywatch.summary import CycleSummary
from policywatch.versioning_events import EventsMixin
from policywatch.versioning_moves import MovesMixin
from storage import store
from storage.db import unit_of_work
from storage.models import Document, DocumentVersion

if TYPE_CHECKING:
    from policywatch.extraction import ExtractedDocument

log = logging.getLogger(__name__)

# What one transaction of the version stage holds at most: pages read in full (each commit costs
# SQLite's full-text index a segment and its merges: indexing a version took 29 ms alone, 13 ms
# 25 to a transaction, 9 ms 100 to one), pages seen again (304 or unchanged), and seconds (so the
# web app sees a long cycle's progress).
DOCUMENTS_PER_TRANSACTION = 50
SEEN_BATCH = 200
MAX_TRANSACTION_S = 5.0


class DocumentProcessor(EventsMixin, MovesMixin):
    """Everything after the observe stage: version, diff, classify, queue alerts.

    Documents are written in batches, one transaction each (up to DOCUMENTS_PER_TRANSACTION pages
    read in full, SEEN_BATCH pages seen again, MAX_TRANSACTION_S seconds; committed early whenever
    the observe stage keeps the version stage waiting, see observe.IDLE_AFTER_S). A batch is whole or
    absent: a crash or a lost database loses the observations of the open batch, which the next
    cycle makes again, never half a document, an event without its alerts, or an alert twice.

    Possible moves (`pairs`, see policywatch.identity): the observations of a document's URL and of
    the new URL that may be its new address are held until both have come, in either order, then
    decided together (`_take_pair`) in one unit of the batch.

    The events an outcome makes and their alerts (`_classify`, `_gone`) are EventsMixin's
    (policywatch.versioning_events), the decision on a possible move MovesMixin's
    (policywatch.versioning_moves).
    """

    def __init__(
        self,
        source: SourceConfig,
        factory: sessionmaker[Session],
        summary: CycleSummary,
        silent: bool,
        subscribers: Sequence[ActiveSubscriber] | None = None,
        classifier: RelevanceClassifier = DEFAULT_CLASSIFIER,
        pairs: Mapping[int, tuple[Target, Target]] | None = None,
    ):
        self.source = source
        self.classifier = classifier  # settings.relevance of the configuration this cycle runs
        self.factory = factory
        self.summary = summary
        self.silent = silent
        # The alert subscribers (None: read from the database at the first event of this batch).
        self.subscribers = subscribers
        self._resolver: Resolver | None = None  # known documents, for references (lazily)
        # One transaction holds many documents (see DOCUMENTS_PER_TRANSACTION): the observations
        # of the open batch, kept to redo them one by one if a page fails inside it.
        self._session: Session | None = None
        self._opened_at = 0.0
        # Each unit: the observation it is reported under, the work that writes it, its counts.
        self._batch: list[tuple[Observation, Callable[[Session], None], CycleSummary]] = []
        self._seen: list[store.SeenAgain] = []
        # Possible moves: document id -> (its target, the new URL's target), and the observation
        # of a pair that waits for its partner's.
        self._pairs = dict(pairs or {})
        self._halves: dict[int, Observation] = {}
        # Attachments: files linked from the pages read in this batch that no document is yet
        # (URL -> the page's document id), and the parents of the attachment targets being read.
        self._found_attachments: dict[str, int] = {}
        self.attachment_parents: dict[str, int] = {}
        self._page_titles: dict[int, str] = {}

    def take_found_attachments(self) -> dict[str, int]:
        """The attachments found since the last call (URL -> page's document id)."""
        found, self._found_attachments = self._found_attachments, {}
        return found

    def _note_attachments(self, session: Session, page: Document, content: ExtractedDocument) -> None:
        """Files this page links that no document is yet: to be read in this cycle."""
        if not self.source.attachments or page.attachment_of is not None:
            return
        page_host = url_host(page.url)
        for url, _ in content.attachments[:MAX_ATTACHMENTS_PER_PAGE]:
            try:
                canonical = canonical_url(url)
            except ValueError:
                continue
            if url_host(canonical) != page_host:
                continue  # the page's own files: another host is another site's (and budget's)
            if (
                canonical not in self._found_attachments
                and store.document_for_url(session, canonical) is None
            ):
                self._found_attachments[canonical] = page.id

    def _known_documents(self, session: Session, document: Document) -> Resolver:
        """The cycle's index of known documents (policywatch.policy_graph), loaded once when a new
        text first references another document, then kept up to date with the documents recorded."""
        if self._resolver is None:
            self._resolver = Resolver.load(session)
        self._resolver.add_document(document)
        return self._resolver

    def process(self, seen: Observation) -> None:
        """Take one observation into the open batch (committed by `flush`, or when it is full)."""
        doc_id = seen.target.document_id
        pair = self._pairs.get(doc_id) if doc_id is not None else None
        if doc_id is not None and pair is not None and seen.target in pair:
            partner = self._halves.pop(doc_id, None)
            if partner is None:
                self._halves[doc_id] = seen  # decided when the other half comes
            else:
                old, new = (seen, partner) if seen.target == pair[0] else (partner, seen)
                self._take_pair(old, new)
        else:
            self._take(seen)
        if (
            len(self._batch) >= DOCUMENTS_PER_TRANSACTION
            or len(self._seen) >= SEEN_BATCH
            or (self._session is not None and time.monotonic() - self._opened_at > MAX_TRANSACTION_S)
        ):
            self.flush()

    def finish(self) -> None:
        """Decide the halves of pairs whose partner never came (the batch held only one of them)."""
        halves, self._halves = self._halves, {}
        for doc_id, seen in halves.items():
            if seen.target == self._pairs[doc_id][0]:
                self._take(seen)
            else:
                self._write(seen, functools.partial(self._candidate_alone, seen=seen))

    def _take(self, seen: Observation) -> None:
        if seen.same_page or (seen.fetch.not_modified and not seen.fetch.error):
            self._seen_again(seen)
        else:
            self._write(seen, lambda session: self._process(session, seen))

    def _write(self, seen: Observation, work: Callable[[Session], None]) -> None:
        """Run `work` in the open batch; `seen` names it if it fails."""
        session = self._open()
        try:
            delta = self._counted(lambda: work(session))
        except (OperationalError, DBAPIError):
            raise  # the database is gone: the cycle stops, the next one catches up
        except Exception:  # a bug on one page must not stop the other pages
            self._batch.append((seen, work, CycleSummary()))
            self._replay_batch()
        else:
            self._batch.append((seen, work, delta))

    def _counted(self, work: Callable[[], None]) -> CycleSummary:
        """Run `work` counting into a summary of its own: it joins the cycle's when committed."""
        cycle_summary, self.summary = self.summary, CycleSummary()
        try:
            work()
            return self.summary
        finally:
            self.summary = cycle_summary

    def _open(self) -> Session:
        if self._session is None:
            self._session = self.factory()
            self._session.begin()
            self._opened_at = time.monotonic()
        return self._session

    def _replay_batch(self) -> None:
        """A page failed inside the batch: roll the batch back and redo its pages one transaction
        each, so that only the failing page is lost (recorded as an internal error)."""
        self.close()
        self._resolver = None  # it knew documents of the rolled-back batch: read it again
        batch, self._batch = self._batch, []
        for seen, work, _ in batch:
            try:
                with unit_of_work(self.factory) as session:
                    self.summary.add(self._counted(functools.partial(work, session)))
            except (OperationalError, DBAPIError):
                raise
            except Exception as exc:
                log.exception("processing %s failed", seen.target.url)
                with unit_of_work(self.factory) as session:
                    self._fail(
                        session,
                        seen.target,
                        seen.fetch,
                        f"processing failed: {type(exc).__name__}: {exc}",
                        "internal",
                    )

    def _seen_again(self, seen: Observation) -> None:
        """A 304, or the same page but for chrome: the current version seen again (written in batches)."""
        self.summary.succeeded += 1
        if seen.same_page:
            self.summary.fetched += 1
            self.summary.unchanged += 1
            outcome = "unchanged"
        else:
            self.summary.not_modified += 1
            outcome = "not_modified"
        if seen.target.document_id is None:  # a conditional request is only ever made for a known one
            return
        self._seen.append(store.SeenAgain(self.source.id, seen.target.document_id, seen.fetch, outcome))

    def flush(self) -> None:
        """Commit the open batch: its documents and the pages seen again that are waiting."""
        if self._seen:
            started = time.thread_time()
            store.record_seen_again(self._open(), self._seen)
            self.summary.time("version", time.thread_time() - started)
        if self._session is not None:
            self._session.commit()
        self.close()
        for _, _, delta in self._batch:
            self.summary.add(delta)
        self._seen, self._batch = [], []

    def commit_documents(self) -> None:
        """Commit the open batch if it has written anything (a transaction that wrote holds
        SQLite's write lock: other cycles and Airflow tasks wait on it)."""
        if self._session is not None:
            self.flush()

    def close(self) -> None:
        """End the open batch without committing it (after a database error: nothing half-written)."""
        if self._session is not None:
            self._session.close()  # rolls back what was not committed
            self._session = None

    def _fail(
        self, session: Session, target: Target, result: FetchResult, reason: str, kind: str | None = None
    ) -> None:
        """A fetch error: recorded with its reason, counted, and nothing else (no version, no event)."""
        store.record_attempt(
            session, self.source.id, target.document_id, result, "error", error=reason, error_kind=kind
        )
        self.summary.fail(self.source.id, target.url, reason)

    def _process(self, session: Session, seen: Observation) -> None:
        source_id, summary = self.source.id, self.summary
        target, result = seen.target, seen.fetch
        if target.document_id is not None and not self._own_url(session, target):
            # A new URL that may be this document's new address, without the document's own
            # target in this batch: never recorded as the document on a guess.
            self._candidate_alone(session, seen)
            return
        if result.error:
            self._fail(session, target, result, result.error)
            return
        if result.ok:
            summary.fetched += 1
        if redirected_home(target.url, result.final_url, result.redirects):
            # A deep page sent to the site's home page was withdrawn: a removal, never a move to
            # the home page (CONTRACT.md).
            self._gone(session, target, result, "listed link redirects to the home page")
            return
        if seen.internal_error is not None:
            self._fail(session, target, result, seen.internal_error, "internal")
            return
        if seen.not_found:
            self._gone(session, target, result)
            return
        if not result.ok:
            self._fail(session, target, result, f"HTTP {result.status}", "http")
            return
        if seen.extraction_error is not None or seen.content is None:
            self._fail(session, target, result, f"extraction: {seen.extraction_error}", "extract")
            return
        content = seen.content
        started = time.thread_time()
        if self._newly_undecodable(session, target, content):
            # Bytes that are not valid in the page's charset (a corrupted transfer or a broken CMS
            # template) would turn into U+FFFD and show as a change of a text that was clean.
            reason = f"invalid bytes for {result.encoding}: undecodable characters in the text"
            self._fail(session, target, result, reason, "encoding")
            return
        if target.document_id is not None:
            # A current version read by an older extractor is re-read first (from its stored page),
            # so that only what changed on the page can show as a change.
            refresh_current_version(session, target.document_id, self.source.content_selector)
        is_file = is_file_target(target)
        outcome = store.record_content(
            session,
            source_id,
            target.document_id,
            result,
            content,
            seen.packed or result.text or "",
            result.encoding,
            same_document=None if is_file else moved_document,
            page_fingerprint=seen.fingerprint,
            extractor_revision=file_revision() if is_file else EXTRACTOR_REVISION,
            attachment_of=self.attachment_parents.get(target.url) if target.document_id is None else None,
        )
        if outcome.kind in ("first", "changed"):
            # Before the event's alerts are queued: a subscriber may follow what this text cites.
            record_references(
                session,
                outcome.new_version,
                outcome.document,
                lambda: self._known_documents(session, outcome.document),
                outcome.old_version,
                precomputed=seen.references,
            )
        versioned = time.thread_time()
        summary.time("version", versioned - started)
        self.summary.succeeded += 1
        if not is_file:
            self._note_attachments(session, outcome.document, content)
        kind = self._classify(session, outcome)
        store.record_attempt(session, source_id, outcome.document.id, result, kind)
        summary.time("diff", time.thread_time() - versioned)

    @staticmethod
    def _newly_undecodable(session: Session, target: Target, content: ExtractedDocument) -> bool:
        """The text has U+FFFD and the document's current version had none."""
        if target.document_id is None or not any("\ufffd" in p for p in (content.title, *content.paragraphs)):
            return False
        doc = session.get(Document, target.document_id)
        if doc is None or doc.current_version_id is None:
            return False
        current = session.get(DocumentVersion, doc.current_version_id)
        return current is not None and "\ufffd" not in current.text and "\ufffd" not in current.title
