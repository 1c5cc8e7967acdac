"""extraction: HTML policy page → clean document; text normalisation for comparing versions."""

from .docmeta import canonical_doc_number, parse_date, parse_doc_number
from .document import (
    CMS_CONTAINERS,
    ExtractedDocument,
    ExtractionError,
    extract_document,
    is_not_found_page,
)
from .normalise import content_hash, fold_whitespace, normalise_paragraphs, normalise_text

__all__ = [
    "CMS_CONTAINERS",
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
