"""PDF: the text layer, read with pdfminer.six (layout analysis gives lines with positions and font
sizes; its bundled Adobe CMaps decode CID fonts such as STSong-Light / UniGB-UCS2-H without a
ToUnicode map, the fonts of many Chinese government PDFs)."""

from __future__ import annotations

import io
import logging

from ._base import Budget, FileExtractionError, FileText, Reader
from ._layout import Line, heading_of, merge_rows, paragraphs_of, remove_running_lines

# pdfminer logs every odd object at WARNING: noise in a cycle's log, the outcome is what counts.
logging.getLogger("pdfminer").setLevel(logging.ERROR)


class PdfReader(Reader):
    kinds = ("pdf",)

    def read(self, body: bytes, kind: str, budget: Budget) -> FileText:
        from pdfminer.converter import PDFPageAggregator
        from pdfminer.layout import LAParams, LTChar, LTFigure, LTImage, LTTextLine
        from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
        from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
        from pdfminer.pdfpage import PDFPage
        from pdfminer.pdfparser import PDFParser
        from pdfminer.pdftypes import resolve1

        name, limits = budget.name, budget.limits
        # pdfminer rebuilds a lost cross-reference table and reads what it finds: a cut-off download
        # would be a shorter text, then a "change" when the whole file comes. No %%EOF, no text.
        if b"%%EOF" not in body[-4096:]:
            raise FileExtractionError("pdf: truncated (no %%EOF at the end)", name)
        try:
            doc = PDFDocument(PDFParser(io.BytesIO(body)))
        except PDFPasswordIncorrect:
            raise FileExtractionError("pdf: encrypted, a password is needed to open it", name) from None
        except Exception as exc:
            raise FileExtractionError(f"pdf: unreadable ({type(exc).__name__}: {exc})"[:300], name) from None
        try:
            declared = resolve1(resolve1(doc.catalog.get("Pages")).get("Count"))
        except Exception:
            declared = None
        if isinstance(declared, int) and declared > limits.max_pages:
            raise FileExtractionError(f"pdf: {declared} pages declared (limit {limits.max_pages})", name)

        rsrc = PDFResourceManager(caching=True)
        # all_texts: text inside form XObjects (LTFigure) is grouped into lines too.
        device = PDFPageAggregator(rsrc, laparams=LAParams(all_texts=True))
        interpreter = PDFPageInterpreter(rsrc, device)
        pages: list[list[Line]] = []
        images = 0
        try:
            for number, page in enumerate(PDFPage.create_pages(doc)):
                if number >= limits.max_pages:
                    raise FileExtractionError(f"pdf: more than {limits.max_pages} pages", name)
                budget.check(f" (at page {number + 1})")
                content = 0
                for ref in page.contents:
                    stream = resolve1(ref)  # an array of /Contents holds references
                    data = stream.get_data() if hasattr(stream, "get_data") else b""
                    content += len(data or b"")
                if content > limits.max_page_content_bytes:
                    raise FileExtractionError(
                        f"pdf: page {number + 1} has {content} bytes of content "
                        f"(limit {limits.max_page_content_bytes})",
                        name,
                    )
                interpreter.process_page(page)
                layout = device.get_result()
                height = layout.height
                found: list[Line] = []
                stack = list(layout)
                while stack:
                    item = stack.pop()
                    if isinstance(item, LTTextLine):
                        text = item.get_text().rstrip("\n")
                        if text.strip():
                            chars = [c.size for c in item if isinstance(c, LTChar)]
                            size = sorted(chars)[len(chars) // 2] if chars else item.height
                            found.append(
                                Line(number, height - item.y1, height - item.y0, item.x0, item.x1, size, text)
                            )
                            budget.add_text(text)
                    elif isinstance(item, LTImage):
                        images += 1
                    elif isinstance(item, LTFigure) or hasattr(item, "__iter__"):
                        stack.extend(item)
                pages.append(merge_rows(found))
        except FileExtractionError:
            raise
        except MemoryError:
            raise FileExtractionError("pdf: memory limit exceeded", name) from None
        except RecursionError:
            raise FileExtractionError("pdf: objects nested too deeply", name) from None
        except Exception as exc:
            raise FileExtractionError(f"pdf: unreadable ({type(exc).__name__}: {exc})"[:300], name) from None
        if not pages:
            raise FileExtractionError("pdf: no pages", name)

        pages, removed = remove_running_lines(pages)
        lines = [ln for page_lines in pages for ln in page_lines]
        paragraphs, firsts = paragraphs_of(lines)
        if not paragraphs:
            if images:
                raise FileExtractionError("pdf: no text layer (scanned)", name)
            raise FileExtractionError("pdf: no text (pages without text or images)", name)
        meta_title = None
        for info in doc.info:
            value = resolve1(info.get("Title"))
            if isinstance(value, bytes):
                meta_title = _pdf_string(value)
        return FileText(
            paragraphs=paragraphs,
            method="pdf",
            heading=heading_of(paragraphs, firsts),
            meta_title=meta_title,
            notes=[f"pdf text layer, {len(pages)} pages, {removed} header/footer/page-number lines removed"],
        )


def _pdf_string(value: bytes) -> str:
    """A PDF text string: UTF-16 with a byte-order mark, else PDFDocEncoding (~Latin-1)."""
    if value.startswith((b"\xfe\xff", b"\xff\xfe")):
        return value.decode("utf-16", "replace")
    if value.startswith(b"\xef\xbb\xbf"):
        return value[3:].decode("utf-8", "replace")
    return value.decode("latin-1")
