"""Downloads: CSV and JSON exports of changes and of a document's history, Atom feeds of changes."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from alerts.identity import local_time
from alerts.marks import current_marks
from policywatch.web.deps import DocumentId, FilterDep, SessionDep
from policywatch.web.links import absolute
from policywatch.web.store import Store
from storage.queries import ChangeFilter, document_history, filtered_changes, iso, list_sources

router = APIRouter(tags=["exports"])

CHANGE_COLUMNS = (
    "id",
    "kind",
    "source",
    "url",
    "document_id",
    "title",
    "old_version_id",
    "new_version_id",
    "detected_at",
    "relevant",
    "significance",
    "summary",
)
HISTORY_COLUMNS = (
    "document_id",
    "id",
    "first_seen_at",
    "last_seen_at",
    "content_hash",
    "title",
    "doc_number",
    "published_at",
    "chars",
    "issuer",
    "url",
)
LOCAL_COLUMN = "detected_local"
# The current triage mark (alerts.marks): after the other columns, so theirs keep their places.
MARK_COLUMNS = ("mark", "mark_note", "marked_by", "marked_at")
BATCH = 1000
FEED_ENTRIES = 50


def _cell(value: Any) -> Any:
    """Spreadsheet-safe: page text that starts like a formula is kept as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_cell(v) for v in values])
    return buffer.getvalue()


def _all_changes(store: Store, where: ChangeFilter) -> Iterator[dict[str, Any]]:
    """Every matching event, newest first, read in batches in a session of its own (the response
    streams after the request's session is gone)."""
    with store.session() as session:
        offset = 0
        while True:
            rows = filtered_changes(session, where, limit=BATCH, offset=offset)
            marks = current_marks(session, [r["id"] for r in rows if r["mark"]])
            for row in rows:
                current = marks.get(row["id"]) if row["mark"] else None
                row["mark_note"] = current.note if current else None
                row["marked_by"] = current.user if current else None
                row["marked_at"] = iso(current.at) if current else None
            yield from rows
            if len(rows) < BATCH:
                return
            offset += BATCH


def _download(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/export/changes.csv", summary="Change events as CSV (same filters as /api/changes)")
def export_changes_csv(request: Request, where: FilterDep) -> Response:
    store: Store = request.app.state.store

    def lines() -> Iterator[str]:
        # BOM: spreadsheets then read UTF-8. The ISO UTC column stays for scripts; the last one is
        # for people: the display zone (北京时间 by default), without microseconds.
        yield "\ufeff" + _csv_line([*CHANGE_COLUMNS, LOCAL_COLUMN, *MARK_COLUMNS])
        for row in _all_changes(store, where):
            local = local_time(row["detected_at"], seconds=True)
            yield _csv_line([*(row[c] for c in CHANGE_COLUMNS), local, *(row[c] for c in MARK_COLUMNS)])

    return StreamingResponse(
        lines(), media_type="text/csv; charset=utf-8", headers=_download("policywatch-changes.csv")
    )


@router.get("/export/changes.json", summary="Change events as a JSON array")
def export_changes_json(request: Request, where: FilterDep) -> Response:
    store: Store = request.app.state.store

    def chunks() -> Iterator[str]:
        yield "["
        for n, row in enumerate(_all_changes(store, where)):
            yield ("," if n else "") + json.dumps(row, ensure_ascii=False)
        yield "]\n"

    return StreamingResponse(
        chunks(), media_type="application/json", headers=_download("policywatch-changes.json")
    )


def _history(session: Any, document_id: int) -> dict[str, Any]:
    history = document_history(session, str(document_id))
    if history is None:
        raise HTTPException(status_code=404, detail=f"no document {document_id}")
    return history


@router.get("/export/documents/{document_id}/history.csv", summary="A document's versions as CSV")
def export_history_csv(session: SessionDep, document_id: DocumentId) -> Response:
    history = _history(session, document_id)
    body = "\ufeff" + _csv_line([*HISTORY_COLUMNS, "first_seen_local", "last_seen_local"])
    for version in history["versions"]:
        body += _csv_line(
            [
                document_id,
                *(version[c] for c in HISTORY_COLUMNS[1:]),
                local_time(version["first_seen_at"], seconds=True),
                local_time(version["last_seen_at"], seconds=True),
            ]
        )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers=_download(f"policywatch-document-{document_id}-history.csv"),
    )


@router.get("/export/documents/{document_id}/history.json", summary="A document's versions as JSON")
def export_history_json(session: SessionDep, document_id: DocumentId) -> Response:
    history = _history(session, document_id)
    return Response(
        json.dumps(history, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers=_download(f"policywatch-document-{document_id}-history.json"),
    )


# --- Atom -----------------------------------------------------------------------------------------


# Everything XML 1.0 does not allow in a document (its production `Char`): C0 controls other than
# tab, LF and CR; surrogates (lone ones: Python strings can hold them); U+FFFE and U+FFFF.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_char(match: re.Match[str]) -> str:
    # Controls are dropped (as before); the other invalid characters leave a visible U+FFFD.
    return "" if match.group() < " " else "\ufffd"


def xml_safe(value: Any) -> str:
    """`value` as text XML 1.0 can carry: page text is untrusted, and one U+FFFF in one title
    would make the whole feed unreadable to every feed reader."""
    return _XML_INVALID.sub(_xml_char, str(value or ""))


def _xml_text(value: Any) -> str:
    """Escaped for XML element content, without the characters XML 1.0 forbids."""
    return xml_escape(xml_safe(value))


def _xml_attr(value: Any) -> str:
    """A quoted XML attribute value, without the characters XML 1.0 forbids."""
    return quoteattr(xml_safe(value))


def _entry(request: Request, event: dict[str, Any]) -> str:
    if event["old_version_id"] and event["new_version_id"]:
        link = absolute(request, f"/diff/{event['old_version_id']}/{event['new_version_id']}")
    else:
        link = absolute(request, f"/documents/{event['document_id']}")
    title = f"[{event['kind']}] {event['title'] or event['url']}"
    return (
        "<entry>"
        f"<id>{_xml_text(absolute(request, '/changes') + '#change-' + str(event['id']))}</id>"
        f"<title>{_xml_text(title)}</title>"
        f"<updated>{_xml_text(event['detected_at'])}</updated>"
        f'<link rel="alternate" type="text/html" href={_xml_attr(link)}/>'
        f"<category term={_xml_attr(event['kind'])}/>"
        f'<category term={_xml_attr(event["source"])} label="source"/>'
        f"<summary>{_xml_text(event['summary'])}</summary>"
        "</entry>"
    )


def _feed(request: Request, session: Any, where: ChangeFilter, title: str) -> Response:
    events = filtered_changes(session, where, limit=FEED_ENTRIES)
    updated = events[0]["detected_at"] if events else datetime.now(UTC).isoformat().replace("+00:00", "Z")
    self_url = str(request.url)
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>{_xml_text(self_url)}</id>"
        f"<title>{_xml_text(title)}</title>"
        f"<updated>{_xml_text(updated)}</updated>"
        f'<link rel="self" href={_xml_attr(self_url)}/>'
        f'<link rel="alternate" type="text/html" href={_xml_attr(absolute(request, "/changes", source=where.source))}/>'
        "<author><name>PolicyWatch</name></author>"
        + "".join(_entry(request, e) for e in events)
        + "</feed>\n"
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get("/feed/changes.atom", summary="Atom feed of the newest changes (same filters as /api/changes)")
def feed_changes(request: Request, session: SessionDep, where: FilterDep) -> Response:
    title = "PolicyWatch: changes" + (f" ({where.source})" if where.source else "")
    return _feed(request, session, where, title)


@router.get("/feed/sources/{source_id}.atom", summary="Atom feed of one source's newest changes")
def feed_source(request: Request, session: SessionDep, source_id: str) -> Response:
    names = {s["id"]: s["name"] for s in list_sources(session)}
    if source_id not in names:
        raise HTTPException(status_code=404, detail=f"no source {source_id!r}")
    return _feed(request, session, ChangeFilter(source=source_id), f"PolicyWatch: {names[source_id]}")
