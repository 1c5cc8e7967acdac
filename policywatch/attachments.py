"""Attachments (附件): the files a policy page links, each watched as a document of its own.

On Chinese government sites the notice often says only 现将《…》印发给你们 and the policy is in a
PDF, a Word or WPS file, an OFD or a spreadsheet. The pipeline finds them in the body of each page it
reads (`ExtractedDocument.attachments`), fetches them in the same cycle, right after the pages, and
versions, diffs and alerts their text like a page's, with `attachment_of` = the page's document.
Here: observing one file (fetch its bytes, read its text with extraction.files). No database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import unquote, urlsplit

from crawlers import Fetcher
from policywatch.config import SourceConfig

# From extraction.content, not extraction.document: a cycle that reads no page never imports bs4.
from policywatch.extraction.content import is_attachment_url
from policywatch.observe import Observation, Target
from storage.raw import pack_file

log = logging.getLogger(__name__)

# Files linked from one page that a cycle starts watching (a page listing hundreds of files is a
# download centre, not a notice).
MAX_ATTACHMENTS_PER_PAGE = 20


def is_file_target(target: Target) -> bool:
    """A target read as a file rather than an HTML page: its URL names a file type."""
    return is_attachment_url(target.url)


def file_name(url: str) -> str:
    """The file's name in its URL (percent-decoded): what alerts call the attachment."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or url


def file_revision() -> str:
    """The extractor_revision of an attachment's version: "file-" and extraction.files' revision."""
    from policywatch.extraction import files

    return f"file-{getattr(files, 'FILES_REVISION', '1')}"


def observe_file(fetcher: Fetcher, source: SourceConfig, target: Target, allow_private: bool) -> Observation:
    """Fetch a file and read its text (never raises for a bad file: see Observation)."""
    from policywatch.extraction.files import FileExtractionError, extract_file, sniff_file_kind

    started = time.thread_time()
    result = fetcher.fetch_page(
        target.url,
        etag=target.etag,
        last_modified=target.last_modified,
        min_delay_s=source.min_delay_s,
        allow_private=allow_private,
        file=True,
    )
    fetched = time.thread_time()
    seen = Observation(target, result, cpu_s={"fetch": fetched - started})
    if result.error or result.not_modified:
        return seen
    if result.gone:
        seen.not_found = True
        return seen
    if not result.ok or result.body is None:
        return seen
    body = result.body
    seen.fetch = replace(result, body=None)  # the bytes go to the store packed, once
    try:
        kind = sniff_file_kind(body, result.content_type, target.url)
        if kind is None:
            seen.extraction_error = f"{file_name(target.url)}: not a file type PolicyWatch reads"
        else:
            seen.content = extract_file(body, kind, target.url)
            seen.packed = pack_file(body)
            seen.fetch = replace(seen.fetch, encoding=f"file:{kind}")
    except FileExtractionError as exc:
        seen.extraction_error = str(exc)
    except Exception as exc:  # a bug, or a library tripped up by a hostile file: this file only
        log.exception("reading %s failed", target.url)
        seen.internal_error = f"processing failed: {type(exc).__name__}: {exc}"
        seen.content = seen.packed = None
    seen.cpu_s["extract"] = time.thread_time() - fetched
    return seen


def observe_files(
    fetcher: Fetcher, source: SourceConfig, targets: Sequence[Target], allow_private: bool
) -> Iterator[Observation]:
    """Observe files on a few threads (the fetcher's politeness applies per host), as they come."""
    if not targets:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(source.concurrency, len(targets)))) as pool:
        yield from pool.map(lambda t: observe_file(fetcher, source, t, allow_private), targets)
