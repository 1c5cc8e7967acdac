"""XLSX: every sheet's rows, with openpyxl (the maintained XLSX reader; read-only mode streams rows,
and it parses through defusedxml when that is installed). One paragraph per row, cells joined by a
space as for HTML tables; the sheet's name leads its rows when there are several sheets."""

from __future__ import annotations

import datetime as dt
import io
import re

from ..normalise import fold_whitespace
from ._base import Budget, FileExtractionError, FileText, Reader
from ._zip import open_zip

_ATTACHMENT_LABEL = re.compile(r"^附件\s*\d*[:：]?$|^附表\s*\d*[:：]?$")


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        # 35.0 is the 35 the sheet shows; repr keeps the rest exact.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return fold_whitespace(str(value))


class XlsxReader(Reader):
    kinds = ("xlsx",)

    def read(self, body: bytes, kind: str, budget: Budget) -> FileText:
        import openpyxl

        name, limits = budget.name, budget.limits
        open_zip(body, "xlsx", budget).close()
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
        except MemoryError:
            raise FileExtractionError("xlsx: memory limit exceeded", name) from None
        except Exception as exc:
            raise FileExtractionError(f"xlsx: unreadable ({type(exc).__name__}: {exc})"[:300], name) from None
        paragraphs: list[str] = []
        heading: str | None = None
        rows = 0
        try:
            sheets = workbook.worksheets
            for sheet_no, sheet in enumerate(sheets):
                if len(sheets) > 1:
                    paragraphs.append(fold_whitespace(sheet.title))
                for row_no, values in enumerate(sheet.iter_rows(values_only=True)):
                    rows += 1
                    if rows > limits.max_rows:
                        raise FileExtractionError(f"xlsx: more than {limits.max_rows} rows", name)
                    if rows % 500 == 0:
                        budget.check(f" (at row {rows})")
                    cells = [t for t in map(cell_text, values) if t]
                    if not cells:
                        continue
                    text = fold_whitespace(" ".join(cells))
                    # A title row: one cell (merged across the table) near the top of the first sheet.
                    if (
                        heading is None
                        and sheet_no == 0
                        and row_no < 3
                        and len(cells) == 1
                        and not _ATTACHMENT_LABEL.match(text)
                    ):
                        heading = text
                    paragraphs.append(text)
                    budget.add_text(text)
        except FileExtractionError:
            raise
        except MemoryError:
            raise FileExtractionError("xlsx: memory limit exceeded", name) from None
        except Exception as exc:
            raise FileExtractionError(f"xlsx: unreadable ({type(exc).__name__}: {exc})"[:300], name) from None
        finally:
            workbook.close()
        meta = workbook.properties.title if workbook.properties is not None else None
        return FileText(
            paragraphs,
            "xlsx",
            heading=heading,
            meta_title=meta,
            notes=[f"xlsx {rows} rows"],
            keep_heading=True,
        )
