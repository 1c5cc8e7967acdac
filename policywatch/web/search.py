"""Search: the HTML page /search and the JSON /api/search, over policywatch.search (发文字号 in any
bracket form and number prefixes, issuer, title, text; filters; a history switch over every version;
ranked hits that say whether a document was removed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from policywatch.search import SearchQuery, search
from policywatch.web.deps import PageDep, SessionDep
from policywatch.web.highlight import mark_hits
from policywatch.web.links import href
from policywatch.web.pages import render
from policywatch.web.params import EVENT_KINDS, Page, bad_request, no_nul, parse_when
from storage.queries import list_sources

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["api"])

FILTER_PARAMS = ("q", "source", "issuer", "from", "to", "kind", "status", "history")


def _day(value: str | None, name: str) -> str | None:
    """A published-date bound as stored (YYYY-MM-DD), from any ISO date the filters accept."""
    if not value or not value.strip():
        return None
    parsed = parse_when(value, name)
    return parsed.date().isoformat() if parsed else None


def search_query(
    q: Annotated[
        str, Query(description="发文字号 (any brackets), number prefix, issuer, title or text")
    ] = "",
    source: Annotated[str | None, Query(description="source id")] = None,
    issuer: Annotated[str | None, Query(description="issuer contains")] = None,
    published_from: Annotated[
        str | None, Query(alias="from", description="published on or after (date)")
    ] = None,
    published_to: Annotated[
        str | None, Query(alias="to", description="published on or before (date)")
    ] = None,
    kind: Annotated[str | None, Query(description="documents that had an event of this kind")] = None,
    status: Annotated[str | None, Query(description="active or removed")] = None,
    history: Annotated[
        str | None, Query(description="1: search every version, not only current ones")
    ] = None,
) -> SearchQuery:
    if kind and kind not in EVENT_KINDS:
        raise bad_request(f"kind: one of {', '.join(EVENT_KINDS)}, got {kind!r}")
    if status and status not in ("active", "removed"):
        raise bad_request(f"status: active or removed, got {status!r}")
    return SearchQuery(
        text=no_nul(q, "q") or "",
        history=(history or "").lower() in ("1", "true", "yes", "on"),
        source=no_nul(source, "source") or None,
        issuer=no_nul(issuer, "issuer") or None,
        published_from=_day(published_from, "from"),
        published_to=_day(published_to, "to"),
        kind=kind or None,
        status=status or None,
    )


SearchDep = Annotated[SearchQuery, Depends(search_query)]


def _page_of(session: Any, query: SearchQuery, page: Page) -> tuple[list[dict[str, Any]], bool]:
    from dataclasses import replace

    return page.cut(search(session, replace(query, limit=page.fetch, offset=page.offset)))


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, session: SessionDep, page: PageDep, query: SearchDep) -> Response:
    from policywatch.extraction import normalise_text

    needle = normalise_text(query.text)
    asked = bool(needle) or query.has_filters
    rows, has_next = _page_of(session, query, page) if asked else ([], False)
    hits = [
        {**row, "marked": mark_hits(row["snippet"], needle) if needle else row["snippet"]} for row in rows
    ]
    kept = {k: request.query_params.get(k) for k in (*FILTER_PARAMS, "per_page")}
    return render(
        request,
        "search.html",
        {
            "q": query.text,
            "query": query,
            "params": kept,
            "asked": asked,
            "hits": hits,
            "page": page,
            "sources": list_sources(session),
            "kinds": EVENT_KINDS,
            "prev_url": href(request, "/search", **kept, page=page.number - 1) if page.number > 1 else None,
            "next_url": href(request, "/search", **kept, page=page.number + 1) if has_next else None,
        },
    )


class VersionSeen(BaseModel):
    version_id: int
    first_seen_at: str | None
    last_seen_at: str | None
    current: bool


class SearchHit(BaseModel):
    document_id: int
    url: str
    title: str | None
    version_id: int | None
    snippet: str
    status: str
    doc_number: str | None = None
    issuer: str | None = None
    published_at: str | None = None
    source: str
    match: str  # number | number-prefix | title | issuer | text | filter
    versions: list[VersionSeen] | None = None  # history: the versions that hold the phrase
    in_current: bool | None = None
    gone_since: str | None = None  # history: when the phrase left the text


class SearchPage(BaseModel):
    items: list[SearchHit]
    page: int
    per_page: int
    next_page: int | None


@api_router.get(
    "/search",
    response_model=SearchPage,
    summary="Documents by 发文字号, issuer, title or text, with filters; history=1 searches every version",
)
def api_search(session: SessionDep, page: PageDep, query: SearchDep) -> dict[str, Any]:
    if not query.text.strip() and not query.has_filters:
        raise bad_request("q: a 发文字号, title or text to look for (or a filter)")
    rows, has_next = _page_of(session, query, page)
    return {
        "items": rows,
        "page": page.number,
        "per_page": page.size,
        "next_page": page.number + 1 if has_next else None,
    }
