"""extraction: HTML policy page → clean document; text normalisation for comparing versions."""

from typing import TYPE_CHECKING, Any

from .chrome import CMS_CONTAINERS
from .content import EXTRACTOR_REVISION, ExtractedDocument, ExtractionError
from .docmeta import canonical_doc_number, parse_date, parse_doc_number
from .normalise import content_hash, fold_whitespace, normalise_paragraphs, normalise_text

if TYPE_CHECKING:
    from .document import extract_document, is_not_found_page

_DOCUMENT = frozenset({"extract_document", "is_not_found_page"})


def __getattr__(name: str) -> Any:
    # extraction.document imports BeautifulSoup (~0.1 s): only a cycle that reads a page needs it.
    if name in _DOCUMENT:
        from . import document

        return getattr(document, name)
    raise AttributeError(f"module 'extraction' has no attribute {name!r}")


__all__ = [
    "CMS_CONTAINERS",
    "EXTRACTOR_REVISION",
    "ExtractedDocument",
    "ExtractionError",
    "canonical_doc_number",
    "content_hash",
    "extract_document",
    "fold_whitespace",
    "is_not_found_page",
    "normalise_paragraphs",
    "normalise_text",
    "parse_date",
    "parse_doc_number",
]
