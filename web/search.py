"""Search: the HTML page /search and the JSON /api/search, over storage.queries.search_documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from storage.queries import search_documents
from web.api import SearchPage
from web.deps import PageDep, SessionDep
from web.highlight import mark_hits
from web.links import href
from web.pages import render

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["api"])


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, session: SessionDep, page: PageDep, q: str = "") -> Response:
    from extraction import normalise_text

    needle = normalise_text(q)
    rows, has_next = (
        page.cut(search_documents(session, q, limit=page.fetch, offset=page.offset))
        if needle
        else ([], False)
    )
    hits = [{**row, "marked": mark_hits(row["snippet"], needle)} for row in rows]
    per = request.query_params.get("per_page")
    return render(
        request,
        "search.html",
        {
            "q": q,
            "hits": hits,
            "page": page,
            "prev_url": href(request, "/search", q=q, per_page=per, page=page.number - 1)
            if page.number > 1
            else None,
            "next_url": href(request, "/search", q=q, per_page=per, page=page.number + 1)
            if has_next
            else None,
        },
    )


@api_router.get("/search", response_model=SearchPage, summary="Documents whose current text contains q")
def api_search(
    session: SessionDep, page: PageDep, q: Annotated[str, Query(min_length=1, description="substring")]
) -> dict[str, Any]:
    rows, has_next = page.cut(search_documents(session, q, limit=page.fetch, offset=page.offset))
    return {
        "items": rows,
        "page": page.number,
        "per_page": page.size,
        "next_page": page.number + 1 if has_next else None,
    }
