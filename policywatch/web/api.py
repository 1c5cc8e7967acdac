"""The JSON API under /api (OpenAPI document at /api/openapi.json). Shapes follow CONTRACT.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from crawlers import canonical_url
from policywatch.web.deps import (
    DocumentId,
    FilterDep,
    NewVersionId,
    OldVersionId,
    PageDep,
    SessionDep,
    VersionId,
)
from policywatch.web.diffs import diff_of
from policywatch.web.params import document_ref
from storage.models import Document
from storage.queries import (
    changes_per_day,
    document_detail,
    document_history,
    filtered_changes,
    get_version,
    list_sources,
    source_health,
)

router = APIRouter(prefix="/api", tags=["api"])


class Change(BaseModel):
    id: int
    kind: str = Field(description="new | changed | removed | restored | republished")
    source: str
    url: str
    document_id: int
    title: str | None
    old_version_id: int | None
    new_version_id: int | None
    detected_at: str
    relevant: bool
    significance: float = Field(ge=0, le=1)
    summary: str
    relevance_terms: list[str] = []
    original_document_id: int | None = None
    attachment_of: int | None = None  # the page whose body links this file (an attachment)
    mark: str | None = Field(None, description="the analysts' mark: important | reviewed | not_significant")


class ChangePage(BaseModel):
    items: list[Change]
    page: int
    per_page: int
    next_page: int | None


class Version(BaseModel):
    id: int
    first_seen_at: str
    last_seen_at: str
    content_hash: str
    title: str
    doc_number: str | None
    published_at: str | None
    chars: int
    issuer: str | None = None
    url: str | None = None


class History(BaseModel):
    document_id: int
    url: str
    title: str | None
    source: str
    status: str
    doc_number: str | None
    republished_of: int | None
    versions: list[Version]


class DocumentRef(BaseModel):
    document_id: int
    url: str
    title: str | None
    source: str


class DocumentDetail(BaseModel):
    document_id: int
    url: str
    title: str | None
    source: str
    source_name: str
    status: str
    doc_number: str | None
    issuer: str | None
    published_at: str | None
    first_seen_at: str | None
    last_checked_at: str | None
    current_version_id: int | None
    former_urls: list[str]
    republished_of: DocumentRef | None
    reposts: list[DocumentRef]
    versions: list[Version]
    events: list[Change]


class VersionText(Version):
    document_id: int
    text: str = Field(description="display text, paragraphs joined by newlines")
    normalized_text: str


class DiffChange(BaseModel):
    op: str = Field(description="insert | delete | replace | move")
    old: str | None
    new: str | None
    spans: list[dict[str, Any]]
    old_index: int | None = None
    new_index: int | None = None
    old_paragraph: int | None = None
    new_paragraph: int | None = None


class Diff(BaseModel):
    old_version_id: int
    new_version_id: int
    significance: float
    changes: list[DiffChange]


class SourceInfo(BaseModel):
    id: str
    name: str


class DayCount(BaseModel):
    source: str
    day: str
    count: int


class Dashboard(BaseModel):
    since: str
    changes_per_day: list[DayCount]
    health: list[dict[str, Any]]


@router.get("/changes", response_model=ChangePage, summary="Change events, newest first")
def api_changes(session: SessionDep, where: FilterDep, page: PageDep) -> dict[str, Any]:
    rows, has_next = page.cut(filtered_changes(session, where, limit=page.fetch, offset=page.offset))
    return {
        "items": rows,
        "page": page.number,
        "per_page": page.size,
        "next_page": page.number + 1 if has_next else None,
    }


@router.get("/documents/{document_id}", response_model=DocumentDetail, summary="A document")
def api_document(session: SessionDep, document_id: DocumentId) -> dict[str, Any]:
    detail = document_detail(session, document_id)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"no document {document_id}")
    return detail


@router.get(
    "/documents/{document_id}/graph",
    summary="What the document references and what references it (cites, implements, amends, repeals)",
)
def api_document_graph(session: SessionDep, document_id: DocumentId) -> dict[str, Any]:
    from policywatch.policy_graph import document_graph

    if session.get(Document, document_id) is None:
        raise HTTPException(status_code=404, detail=f"no document {document_id}")
    graph = document_graph(session, document_id)
    graph["provinces"] = [p for p in graph["provinces"] if p["documents"]]
    return graph


@router.get("/documents/{document_id}/history", response_model=History, summary="A document's versions")
def api_history(session: SessionDep, document_id: DocumentId) -> dict[str, Any]:
    history = document_history(session, str(document_id))
    if history is None:
        raise HTTPException(status_code=404, detail=f"no document {document_id}")
    return history


@router.get("/history", response_model=History, summary="A document's versions, by URL or id")
def api_history_by_ref(
    session: SessionDep, ref: Annotated[str, Query(description="URL or id")]
) -> dict[str, Any]:
    history = document_history(session, document_ref(ref), canonical_url)
    if history is None:
        raise HTTPException(status_code=404, detail=f"no document {ref!r}")
    return history


@router.get("/versions/{version_id}", response_model=VersionText, summary="A version and its text")
def api_version(session: SessionDep, version_id: VersionId) -> dict[str, Any]:
    from storage.queries import version_json

    version = get_version(session, version_id)
    if version is None:
        raise HTTPException(status_code=404, detail=f"no version {version_id}")
    return {
        **version_json(version),
        "document_id": version.document_id,
        "text": version.text,
        "normalized_text": version.normalized_text,
    }


@router.get("/diff/{old_id}/{new_id}", response_model=Diff, summary="The difference between two versions")
async def api_diff(request: Request, old_id: OldVersionId, new_id: NewVersionId) -> Response:
    _, computed = await diff_of(request, old_id, new_id)  # computed once per pair (web.diffs)

    def body() -> Response:  # a large diff's JSON is built on a request thread, not the event loop
        payload = Diff.model_validate(computed.diff.to_json(old_id, new_id)).model_dump(mode="json")
        return JSONResponse(payload)

    return await run_in_threadpool(body)


@router.get("/sources", response_model=list[SourceInfo], summary="The sources")
def api_sources(session: SessionDep) -> list[dict[str, Any]]:
    return list_sources(session)


@router.get("/dashboard", response_model=Dashboard, summary="Changes per source per day, source health")
def api_dashboard(session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30) -> dict[str, Any]:
    now = datetime.now(UTC)
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "since": since.isoformat().replace("+00:00", "Z"),
        "changes_per_day": changes_per_day(session, since),
        "health": source_health(session, now - timedelta(days=days)),
    }
