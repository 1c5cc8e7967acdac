"""Possible moves, decided: a document's URL and the new URL that may be its new address.

Part of the version stage's one writer (policywatch.versioning.DocumentProcessor, whose mixin this
is). The plan checks such a pair together (policywatch.discovery, `move_pairs` in
policywatch.pipeline); the processor holds the first answer until the second comes, then
`_take_pair` applies policywatch.identity's verdict on both: the document moves, stays, is gone, or
waits for the next cycle, never recorded as a new document on a guess. Apart from the batching so
that how a pair is decided reads on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from crawlers import FetchResult
from policywatch.config import SourceConfig
from policywatch.identity import GONE, MOVED, UNKNOWN, moved_document, pair_verdict
from policywatch.observe import Observation, Target
from policywatch.summary import CycleSummary
from storage import store
from storage.models import Document

log = logging.getLogger(__name__)


class MovesMixin:
    """DocumentProcessor's possible moves: `_take_pair`, and a new URL whose partner never answered
    (`_candidate_alone`)."""

    # DocumentProcessor's (policywatch.versioning).
    source: SourceConfig
    summary: CycleSummary

    if TYPE_CHECKING:

        def _process(self, session: Session, seen: Observation) -> None: ...

        def _take(self, seen: Observation) -> None: ...

        def _write(self, seen: Observation, work: Callable[[Session], None]) -> None: ...

        def _fail(
            self, session: Session, target: Target, result: FetchResult, reason: str, kind: str | None = None
        ) -> None: ...

    @staticmethod
    def _own_url(session: Session, target: Target) -> bool:
        """`target.url` is its document's (current or former) URL: the target is that document's."""
        doc = session.get(Document, target.document_id)
        if doc is None or doc.url == target.url:
            return True
        holder = store.document_for_url(session, target.url)
        return holder is not None and holder.id == doc.id

    def _take_pair(self, old: Observation, new: Observation) -> None:
        """Decide a possible move from both answers (policywatch.identity.pair_verdict)."""
        doc_id = old.target.document_id
        assert doc_id is not None
        verdict = pair_verdict(old.target.url, old.fetch, old.not_found, new.target.url, new.fetch)
        if verdict == MOVED:
            if _read_in_full(new):
                # The new URL's own answer (unconditional, read in full) is the document's page now:
                # recorded as the check of the document, it moves there (storage.store.record_content).
                def moved(session: Session) -> None:
                    self._process(session, replace(new, target=old.target))
                    self._also_fetched(session, doc_id, old)

                self._write(new, moved)
            else:
                self._take(old)  # the redirect moves the document (storage.store.record_content)
                self._write(new, lambda session: self._also_fetched(session, doc_id, new))
        elif verdict == GONE:
            self._write(old, lambda session: self._old_url_gone(session, old, new))
        elif verdict == UNKNOWN:
            self._take(old)  # its fetch error
            self._write(new, lambda session: self._candidate_alone(session, new))
        else:  # STAYS: the document is still at its URL; the new URL is any new URL
            self._take(old)
            self._write(new, lambda session: self._process(session, _as_new_url(new)))

    def _also_fetched(self, session: Session, doc_id: int, seen: Observation) -> None:
        """The other answer of a moved document's pair: logged as the document's, nothing else."""
        if seen.fetch.error:
            self._fail(session, replace(seen.target, document_id=doc_id), seen.fetch, seen.fetch.error)
            return
        if seen.fetch.ok:
            self.summary.fetched += 1
        store.record_attempt(session, self.source.id, doc_id, seen.fetch, "moved")

    def _old_url_gone(self, session: Session, old: Observation, new: Observation) -> None:
        """The document's URL is gone: the new page first, which is the document if its 发文字号 and
        title say so (then no removal); else the document is removed."""
        doc_id = old.target.document_id
        self._process(session, _as_new_url(new))
        if not (_read_in_full(new) or new.not_found):
            # The new page could not be read (its failure is reported): whether it is the document is
            # unknown, so the removal waits for the next cycle, which pairs them again.
            store.record_attempt(session, self.source.id, doc_id, old.fetch, "deferred")
            return
        holder = store.document_for_url(session, new.target.url)
        if holder is not None and holder.id == doc_id:
            if old.fetch.ok:
                self.summary.fetched += 1
            store.record_attempt(session, self.source.id, doc_id, old.fetch, "moved")
            return
        self._process(session, old)

    def _candidate_alone(self, session: Session, seen: Observation) -> None:
        """A new URL that may be a document's new address, without a usable answer from the document's
        own URL: recorded only when its 发文字号 and title prove it is that document (or it could not
        become a document anyway); otherwise it waits for the next cycle, never recorded as `new` or
        `republished` on a guess."""
        doc_id = seen.target.document_id
        as_new = _as_new_url(seen)
        if not _read_in_full(seen):
            self._process(session, as_new)  # a fetch error or a stale link: reported as such
            return
        assert seen.content is not None
        same = moved_document(session, self.source.id, seen.content)
        if same is not None and same.id == doc_id:
            self._process(session, as_new)
            return
        log.info(
            "%s: left for the next cycle (it may be document %s, whose URL gave no answer)",
            seen.target.url,
            doc_id,
        )
        store.record_attempt(session, self.source.id, None, seen.fetch, "deferred")


def _read_in_full(seen: Observation) -> bool:
    return seen.fetch.ok and seen.content is not None and not seen.not_found


def _as_new_url(seen: Observation) -> Observation:
    """The observation of a pair's new URL, as the observation of a URL no document has yet."""
    return replace(seen, target=Target(seen.target.url))
