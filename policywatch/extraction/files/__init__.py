"""Attachments (附件) as text: PDF, DOCX, XLSX, OFD, and DOC/WPS/ET/XLS through LibreOffice.

    kind = sniff_file_kind(body, content_type, url)          # "pdf", "docx", ... or None
    doc = extract_file(body, kind, url)                      # ExtractedDocument, as for a page

The result is the dataclass `extract_document` returns, so versions, hashing (NFKC-normalised
paragraphs) and the sentence/character diff treat a file like a page. Only the text counts: file
metadata (creation date, producer, document ID, revision) never reaches title or paragraphs, and
page breaks never decide a paragraph (re-paginating a PDF changes nothing).

Any file that cannot be read is a FileExtractionError (an ExtractionError) whose message starts
with the file name: broken or truncated, not a readable format, a scanned PDF without text layer
("pdf: no text layer (scanned)"), or over a FileLimits bound. By default the extraction runs in a
child process with a wall-clock timeout and RLIMIT_AS, so a hostile file costs bounded time and
memory and cannot take the caller down.

One reader class per format (pdf, word, sheet, ofd, legacy), registered in READERS by kind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

from ..content import ExtractedDocument
from ..docmeta import parse_date, parse_doc_number
from ..normalise import fold_whitespace, normalise_text
from ._base import Budget, FileExtractionError, FileLimits, FileText, Reader, file_name
from .legacy import LegacyReader
from .ofd import OfdReader
from .pdf import PdfReader
from .sheet import XlsxReader
from .word import DocxReader

__all__ = [
    "FILE_KINDS",
    "READERS",
    "FileExtractionError",
    "FileLimits",
    "extract_file",
    "file_name",
    "sniff_file_kind",
]

FILE_KINDS = ("pdf", "docx", "xlsx", "ofd", "doc", "wps", "et", "xls", "zip")

READERS: dict[str, Reader] = {}
for _reader in (PdfReader(), DocxReader(), XlsxReader(), OfdReader(), LegacyReader()):
    for _kind in _reader.kinds:
        READERS[_kind] = _reader

# ---------------------------------------------------------------------------------------------
# sniffing

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTENT_TYPES = {
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/ofd": "ofd",
    "application/x-ofd": "ofd",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-works": "wps",
    "application/kswps": "wps",
    "application/wps-office.wps": "wps",
    "application/vnd.ms-wps": "wps",
    "application/kset": "et",
    "application/wps-office.et": "et",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
}
_EXTENSIONS = {f".{k}": k for k in FILE_KINDS}


def _extension_kind(url: str) -> str | None:
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return _EXTENSIONS.get(path[dot:]) if dot >= 0 else None


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def sniff_file_kind(body: bytes, content_type: str | None, url: str) -> str | None:
    """The file's kind: magic bytes first (PDFs are often sent as application/octet-stream), then
    the Content-Type, then the URL's extension; None for anything else (an HTML page served for a
    .pdf link is no file). A zip is told apart by the members its directory names, an OLE
    compound file (DOC/WPS/XLS/ET) by its streams, then by Content-Type and extension."""
    head = body[:1024]
    if b"%PDF-" in head:
        return "pdf"
    mime_kind = _CONTENT_TYPES.get(_mime(content_type))
    ext_kind = _extension_kind(url)
    if body.startswith(b"PK\x03\x04") or body.startswith(b"PK\x05\x06"):
        # bytes.find over the body, not zipfile: sniffing must not parse a hostile directory.
        if b"word/document.xml" in body:
            return "docx"
        if b"xl/workbook.xml" in body:
            return "xlsx"
        if b"OFD.xml" in body:
            return "ofd"
        for kind in (mime_kind, ext_kind):
            if kind in ("docx", "xlsx", "ofd", "zip"):
                return kind
        return "zip"
    if body.startswith(_OLE):
        for kind in (ext_kind, mime_kind):
            if kind in ("doc", "wps", "et", "xls"):
                return kind
        # Stream names are UTF-16LE in the compound file's directory.
        if "WordDocument".encode("utf-16-le") in body:
            return "doc"
        if "Workbook".encode("utf-16-le") in body or "Book".encode("utf-16-le") in body:
            return "xls"
        return None
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return None  # markup: an error page, a login wall, a listing
    if mime_kind and mime_kind not in ("docx", "xlsx", "ofd", "zip"):
        return mime_kind  # a PDF/DOC claimed by its server, whose bytes the reader will judge
    if ext_kind in ("pdf", "doc", "wps", "et", "xls"):
        return ext_kind
    return None


# ---------------------------------------------------------------------------------------------
# extraction

_TITLE_JUNK = re.compile(
    r"^(?:microsoft\s+word\s*-|untitled|无标题|document\d*$|文档\d*$|wps\s)|\.(?:docx?|wps|pdf|xlsx?|et|ofd|txt)\s*$",
    re.I,
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_DATE_LINE_MAX = 20
_ISSUER_END = re.compile(r"(?:人民政府|办公厅|办公室|委员会|部|局|厅|署|院|中心|政府)$")


def _meta_title(title: str | None) -> str | None:
    """A metadata title worth showing: Chinese text, not a file name or a template default."""
    if not title:
        return None
    title = fold_whitespace(title)
    if not title or _TITLE_JUNK.search(title) or not _CJK.search(title) or len(title) > 200:
        return None
    return title


def _doc_number(paragraphs: list[str]) -> str | None:
    # As extract_document does for a page: a number on a line of its own near the top, or labelled.
    for para in paragraphs[:8]:
        number = parse_doc_number(para)
        if number and (len(para) <= len(number) + 4 or para.startswith(("文号", "发文字号"))):
            return number
    return None


def _signature(paragraphs: list[str]) -> tuple[str | None, str | None]:
    """Issuer and date of the signature block at the end (发文机关 line, then 成文日期 line)."""
    tail = paragraphs[-8:]
    for i in range(len(tail) - 1, -1, -1):
        line = tail[i]
        if len(line) <= _DATE_LINE_MAX and (date := parse_date(line)):
            stripped = re.sub(r"[\s\d年月日〇零一二三四五六七八九十（）()]", "", line)
            if stripped:
                continue
            issuer = None
            if i > 0 and len(tail[i - 1]) <= 40 and _ISSUER_END.search(tail[i - 1]):
                issuer = tail[i - 1]
            return issuer, date
    return None, None


def _document(text: FileText, url: str) -> ExtractedDocument:
    name = file_name(url)
    paragraphs = [p for p in (fold_whitespace(p) for p in text.paragraphs) if p]
    if not paragraphs:
        raise FileExtractionError(f"{text.method}: no text", name)
    meta = _meta_title(text.meta_title)
    if text.heading:
        title, why = text.heading, "the heading at the top of the file"
    elif meta:
        title, why = meta, "the file's metadata"
    else:
        title, why = Path(name).stem or name, "the file name"
    # A body that starts with its own title, as extract_document drops it from a page.
    if (
        not text.keep_heading
        and len(paragraphs) > 1
        and normalise_text(paragraphs[0]) == normalise_text(title)
    ):
        paragraphs = paragraphs[1:]
    issuer, date = _signature(paragraphs)
    return ExtractedDocument(
        title=fold_whitespace(title),
        paragraphs=tuple(paragraphs),
        doc_number=_doc_number(paragraphs),
        issuer=issuer,
        published_at=date,
        method=text.method,
        reasons=(f"title: {why}", *(f"body: {n}" for n in text.notes)),
    )


def _read(body: bytes, kind: str, url: str, limits: FileLimits) -> FileText:
    name = file_name(url)
    if len(body) > limits.max_bytes:
        raise FileExtractionError(f"{kind}: {len(body)} bytes (limit {limits.max_bytes})", name)
    if not body:
        raise FileExtractionError(f"{kind}: empty file", name)
    reader = READERS.get(kind)
    if reader is None:
        if kind == "zip":
            raise FileExtractionError("format not readable: zip (an archive of files, not read)", name)
        raise FileExtractionError(f"format not readable: {kind!r} (no reader for this kind)", name)
    try:
        return reader.read(body, kind, Budget(limits, name))
    except FileExtractionError:
        raise
    except MemoryError:
        raise FileExtractionError(f"{kind}: memory limit exceeded", name) from None
    except RecursionError:
        raise FileExtractionError(f"{kind}: structures nested too deeply", name) from None


_DEFAULT_LIMITS = FileLimits()


def extract_file(body: bytes, kind: str, url: str, limits: FileLimits = _DEFAULT_LIMITS) -> ExtractedDocument:
    """Title and paragraphs of a file of `kind` (from sniff_file_kind), as an ExtractedDocument
    with `method` = the kind ("pdf", "docx", "doc (LibreOffice → docx)"...).

    Raises FileExtractionError (message "<file name>: <reason>") for a file that cannot be read."""
    if not limits.isolate:
        return _document(_read(body, kind, url, limits), url)
    return _document(_read_isolated(body, kind, url, limits), url)


# ---------------------------------------------------------------------------------------------
# the child process

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from extraction.files._worker import main; raise SystemExit(main())"
)
_SLACK_S = 5.0  # start-up and import time on top of the budget, before the child is killed


def _read_isolated(body: bytes, kind: str, url: str, limits: FileLimits) -> FileText:
    name = file_name(url)
    if len(body) > limits.max_bytes:  # before copying it into a pipe
        raise FileExtractionError(f"{kind}: {len(body)} bytes (limit {limits.max_bytes})", name)
    header = json.dumps({"kind": kind, "url": url, "limits": asdict(limits)}).encode() + b"\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, _PACKAGE_ROOT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout kills a converter it started too
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        out, err = proc.communicate(header + body, timeout=limits.time_s + _SLACK_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise FileExtractionError(f"{kind}: time limit of {limits.time_s:g} s exceeded", name) from None
    try:
        result = json.loads(out)
    except ValueError:
        if proc.returncode == -signal.SIGXCPU:
            raise FileExtractionError(
                f"{kind}: CPU time limit of {limits.time_s:g} s exceeded", name
            ) from None
        if proc.returncode and proc.returncode < 0:
            why = f"killed by signal {-proc.returncode}"
        else:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            why = lines[-1][:200] if lines else f"exit status {proc.returncode}"
        if "MemoryError" in why or proc.returncode == -signal.SIGKILL:
            why = f"memory limit of {limits.memory_bytes // 2**20} MiB exceeded ({why})"
        raise FileExtractionError(f"{kind}: extraction failed ({why})", name) from None
    if "error" in result:
        raise FileExtractionError(result["error"], name)
    return FileText(**result["text"])
