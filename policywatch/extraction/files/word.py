"""DOCX: body paragraphs and tables in document order, with python-docx (the maintained reader of
WordprocessingML; its lxml parser does not resolve entities). Headers and footers (page numbers)
live in other parts and are not read; core properties (dates, author, revision) are never text."""

from __future__ import annotations

import io

from ..normalise import fold_whitespace
from ._base import Budget, FileExtractionError, FileText, Reader
from ._zip import open_zip

_HEADING_STYLES = ("title", "heading 1", "标题", "标题 1")


class DocxReader(Reader):
    kinds = ("docx",)

    def read(self, body: bytes, kind: str, budget: Budget) -> FileText:
        import docx
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        name = budget.name
        open_zip(body, "docx", budget).close()
        try:
            document = docx.Document(io.BytesIO(body))
        except MemoryError:
            raise FileExtractionError("docx: memory limit exceeded", name) from None
        except Exception as exc:
            raise FileExtractionError(f"docx: unreadable ({type(exc).__name__}: {exc})"[:300], name) from None

        paragraphs: list[str] = []
        heading: str | None = None
        for n, block in enumerate(document.iter_inner_content()):
            if n % 200 == 0:
                budget.check()
            if isinstance(block, Paragraph):
                text = fold_whitespace(block.text)
                if not text:
                    continue
                if heading is None and len(paragraphs) < 5 and len(text) <= 200:
                    style = (block.style.name if block.style is not None else "").lower()
                    centred = block.alignment == WD_ALIGN_PARAGRAPH.CENTER
                    if style.startswith(_HEADING_STYLES) or (centred and not paragraphs):
                        heading = text
                paragraphs.append(text)
                budget.add_text(text)
            elif isinstance(block, Table):
                for row in _table_rows(block):
                    paragraphs.append(row)
                    budget.add_text(row)
        meta = document.core_properties.title or None
        return FileText(
            paragraphs, "docx", heading=heading, meta_title=meta, notes=["docx paragraphs and tables"]
        )


def _table_rows(table: object) -> list[str]:
    """One paragraph per row, cells joined by a space (as extract_document does with HTML tables);
    a merged cell, which python-docx repeats in every grid column it spans, once."""
    out = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells: list[str] = []
        last = None
        for cell in row.cells:
            if cell._tc is last:
                continue
            last = cell._tc
            cells.append(fold_whitespace(cell.text))
        text = fold_whitespace(" ".join(c for c in cells if c))
        if text:
            out.append(text)
    return out
