"""What every file reader shares: limits, the error, the result of a reader, the time budget."""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..content import ExtractionError


@dataclass(frozen=True)
class FileLimits:
    """Bounds on one file's extraction. A file over any of them is a FileExtractionError, never a
    partial text (a partial text would later "change" when the limit or the file moves)."""

    max_bytes: int = 50 * 2**20  # the file as fetched
    max_pages: int = 2000  # PDF / OFD pages, declared or met
    max_zip_members: int = 5000  # DOCX / XLSX / OFD are zips
    max_member_bytes: int = 100 * 2**20  # one member, decompressed (as declared; zipfile enforces it)
    max_total_bytes: int = 300 * 2**20  # all members, decompressed
    # Deflate reaches ~1000:1 on a run of one byte; XML of real documents is 5-30:1. Checked only on
    # members over 1 MiB decompressed, where a bomb's ratio shows.
    max_ratio: float = 200.0
    # Decoded content streams of one PDF page: real pages have KBs to a few MB; a Flate bomb of
    # "0 0 m" operators takes pdfminer a minute per 300 MB before any memory limit stops it.
    max_page_content_bytes: int = 32 * 2**20
    max_rows: int = 200_000  # spreadsheet rows, all sheets
    max_text_chars: int = 10_000_000  # extracted text
    time_s: float = 60.0  # wall-clock budget of one extraction, checked between pages/rows
    memory_bytes: int = 1536 * 2**20  # address space of the extraction process (RLIMIT_AS)
    # Run the extraction in a child process with a hard timeout and RLIMIT_AS: a parser can spend
    # unbounded time or memory inside one object (a 2 GB Flate stream in one PDF page), between two
    # of our budget checks. False: in this process (tests of the readers, trusted files).
    isolate: bool = True


class FileExtractionError(ExtractionError):
    """A file whose text cannot be read: broken, truncated, not a readable format, a scanned PDF
    without text layer, or over a limit. `str()` names the file; `reason` is the why alone."""

    def __init__(self, reason: str, file_name: str = "") -> None:
        self.reason = reason
        self.file_name = file_name
        super().__init__(f"{file_name}: {reason}" if file_name else reason)


@dataclass
class FileText:
    """What a reader returns: the text in reading order, before the shared clean-up."""

    paragraphs: list[str]
    method: str
    heading: str | None = None  # the document's own title as printed (first heading line)
    meta_title: str | None = None  # the title in the file's metadata (often "Microsoft Word - x.doc")
    notes: list[str] = field(default_factory=list)  # for ExtractedDocument.reasons
    # A spreadsheet's title row is a row of the sheet: kept in the text (a page drops its title).
    keep_heading: bool = False


class Budget:
    """The time and text budget of one extraction; readers call check() between pages or rows."""

    def __init__(self, limits: FileLimits, name: str) -> None:
        self.limits = limits
        self.name = name
        self.deadline = time.monotonic() + limits.time_s
        self.chars = 0

    def check(self, what: str = "") -> None:
        if time.monotonic() > self.deadline:
            raise FileExtractionError(f"time limit of {self.limits.time_s:g} s exceeded{what}", self.name)

    def add_text(self, text: str) -> None:
        self.chars += len(text)
        if self.chars > self.limits.max_text_chars:
            raise FileExtractionError(f"more than {self.limits.max_text_chars} characters of text", self.name)

    def remaining(self) -> float:
        return max(0.1, self.deadline - time.monotonic())


def file_name(url: str) -> str:
    """The file name in a URL ("方案.pdf"), percent-decoded; the URL itself when its path has none."""
    path = urlsplit(url).path
    name = unquote(posixpath.basename(path))
    return name or url


class Reader:
    """A file reader: `kinds` it reads, `read()` the text. Plain classes in a registry (files.READERS)."""

    kinds: tuple[str, ...] = ()

    def read(self, body: bytes, kind: str, budget: Budget) -> FileText:
        raise NotImplementedError
