"""OFD (GB/T 33190, China's fixed-layout format): a zip of XML. OFD.xml names each document's
Document.xml, which lists the pages in order; each page's Content.xml holds TextObjects (Boundary,
Size) whose TextCodes carry the text and its position. Parsed with defusedxml (no DTDs, no entity
expansion: the XML comes from outside). Templates (TemplatePage: running headers, seals) and
annotations are not read; positions go through the same line/paragraph layout as PDF."""

from __future__ import annotations

import posixpath
import re
import unicodedata
import zipfile
from typing import Any

from ._base import Budget, FileExtractionError, FileText, Reader
from ._layout import Line, heading_of, merge_rows, paragraphs_of, remove_running_lines
from ._zip import open_zip, read_member

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(elem: Any, name: str) -> list[Any]:
    return [c for c in elem if _local(c.tag) == name]


def _find(elem: Any, *path: str) -> Any:
    for name in path:
        found = _children(elem, name)
        if not found:
            return None
        elem = found[0]
    return elem


def _floats(text: str | None) -> list[float]:
    return [float(x) for x in _NUMBER.findall(text or "")]


def _resolve(base_dir: str, loc: str) -> str:
    loc = loc.strip().replace("\\", "/")
    path = loc.lstrip("/") if loc.startswith("/") else posixpath.join(base_dir, loc)
    return posixpath.normpath(path).lstrip("/")


def _advance(delta: str | None, text: str, size: float) -> float:
    """Width of a TextCode: its DeltaX steps ("g 3 5.6" = three steps of 5.6) plus one character,
    else an estimate (a CJK character is one em, a Latin one half)."""
    if delta:
        tokens = delta.split()
        total, i = 0.0, 0
        while i < len(tokens):
            if tokens[i] == "g" and i + 2 < len(tokens):
                total += float(tokens[i + 1]) * float(tokens[i + 2])
                i += 3
            else:
                total += float(tokens[i])
                i += 1
        return total + size
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size / 2 for c in text)


class OfdReader(Reader):
    kinds = ("ofd",)

    def _xml(self, archive: zipfile.ZipFile, member: str, budget: Budget) -> Any:
        from defusedxml import ElementTree

        data = read_member(archive, member, "ofd", budget)
        try:
            return ElementTree.fromstring(data)
        except Exception as exc:
            raise FileExtractionError(
                f"ofd: {member} is not well-formed XML ({type(exc).__name__})", budget.name
            ) from None

    def read(self, body: bytes, kind: str, budget: Budget) -> FileText:
        name, limits = budget.name, budget.limits
        archive = open_zip(body, "ofd", budget)
        members = {n.lstrip("/"): n for n in archive.namelist()}
        root_name = members.get("OFD.xml") or next(
            (m for k, m in members.items() if k.lower() == "ofd.xml"), None
        )
        if root_name is None:
            raise FileExtractionError("ofd: no OFD.xml in the archive", name)
        root = self._xml(archive, root_name, budget)
        pages: list[list[Line]] = []
        meta_title = None
        for doc_body in _children(root, "DocBody"):
            title = _find(doc_body, "DocInfo", "Title")
            if title is not None and (title.text or "").strip() and meta_title is None:
                meta_title = title.text.strip()
            doc_root = _find(doc_body, "DocRoot")
            if doc_root is None or not (doc_root.text or "").strip():
                continue
            doc_path = _resolve("", doc_root.text)
            if doc_path not in members:
                raise FileExtractionError(f"ofd: {doc_path} named in OFD.xml is missing", name)
            document = self._xml(archive, members[doc_path], budget)
            doc_dir = posixpath.dirname(doc_path)
            page_list = _find(document, "Pages")
            for page in _children(page_list, "Page") if page_list is not None else []:
                if len(pages) >= limits.max_pages:
                    raise FileExtractionError(f"ofd: more than {limits.max_pages} pages", name)
                budget.check(f" (at page {len(pages) + 1})")
                loc = page.get("BaseLoc")
                if not loc:
                    raise FileExtractionError("ofd: a page without BaseLoc", name)
                path = _resolve(doc_dir, loc)
                if path not in members:
                    raise FileExtractionError(f"ofd: page {path} is missing", name)
                content = self._xml(archive, members[path], budget)
                pages.append(merge_rows(self._lines(content, len(pages), budget)))
        if not pages:
            raise FileExtractionError("ofd: no pages", name)
        pages, removed = remove_running_lines(pages)
        lines = [ln for page in pages for ln in page]
        paragraphs, firsts = paragraphs_of(lines)
        if not paragraphs:
            raise FileExtractionError("ofd: no text (scanned or image-only pages)", name)
        return FileText(
            paragraphs,
            "ofd",
            heading=heading_of(paragraphs, firsts),
            meta_title=meta_title,
            notes=[f"ofd TextObjects, {len(pages)} pages, {removed} header/footer/page-number lines removed"],
        )

    def _lines(self, content: object, page_no: int, budget: Budget) -> list[Line]:
        out: list[Line] = []
        for obj in content.iter():  # type: ignore[attr-defined]
            if _local(obj.tag) != "TextObject":
                continue
            box = _floats(obj.get("Boundary")) + [0.0] * 4
            bx, by = box[0], box[1]
            size = (_floats(obj.get("Size")) or [3.5])[0] or 3.5
            x = y = 0.0
            for code in _children(obj, "TextCode"):
                text = code.text or ""
                # A TextCode without X/Y continues where the previous one of its object ended.
                x = (_floats(code.get("X")) or [x])[0]
                y = (_floats(code.get("Y")) or [y])[0]
                if not text.strip():
                    continue
                try:
                    width = _advance(code.get("DeltaX"), text, size)
                except ValueError:
                    width = _advance(None, text, size)
                x0, base = bx + x, by + y
                out.append(Line(page_no, base - size, base, x0, x0 + width, size, text))
                budget.add_text(text)
        return out
