"""What extraction produces: kept apart from extraction.document (BeautifulSoup), so the version
stage can receive extracted documents from the observe stage's processes without importing it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from .normalise import hash_normalised, normalise_paragraphs, normalise_text

# Which extractor produced a text: stored with every version (so history says which extractor read
# it), part of every page fingerprint (extraction.equivalence), and what `policywatch reextract`
# brings old versions up to. Bump it whenever a change to extraction can change what it returns.
EXTRACTOR_REVISION = "2"


class ExtractionError(ValueError):
    """No body text could be found in a page (the message says why)."""


@dataclass(frozen=True)
class ExtractedDocument:
    title: str
    # Display text of the body: chrome removed, reading order, original punctuation kept,
    # whitespace inside a paragraph folded to single spaces.
    paragraphs: tuple[str, ...]
    doc_number: str | None
    issuer: str | None
    published_at: str | None  # ISO date
    method: str  # "selector" | "cms" | "auto"
    # Why the title and the body are what they are ("title: h1, agrees with <title>", "body: cms
    # div#UCAP-CONTENT"): for debugging extraction on a real page, never compared or hashed.
    reasons: tuple[str, ...] = field(default=(), compare=False)
    # Files linked from the body (附件: PDF, Word, WPS, OFD, spreadsheets): (absolute URL, link text).
    # Each is watched as a document of its own; not part of this document's text or hash.
    attachments: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @cached_property
    def normalised_paragraphs(self) -> list[str]:
        return normalise_paragraphs(self.paragraphs)

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the normalised title and paragraphs (see extraction.normalise.content_hash)."""
        return hash_normalised(normalise_text(self.title), self.normalised_paragraphs)

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


# File extensions of attachments (附件): the policy text is often only there. Shared by extraction
# (which lists them) and the fast path's evidence (extraction.equivalence).
ATTACHMENT_EXTENSIONS = (".pdf", ".doc", ".docx", ".wps", ".ofd", ".xls", ".xlsx", ".et", ".zip")


def is_attachment_url(url: str) -> bool:
    """The URL names a file extraction.files reads (by its path's extension)."""
    return urlsplit(url).path.lower().endswith(ATTACHMENT_EXTENSIONS)
