"""Server-rendered HTML pages: changes, document, version, diff, dashboard (search: web.search)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from alerts.marks import mark_history
from policywatch.policy_graph import document_graph
from policywatch.web.charts import colour_for, day_range, stacked_bars_svg, timeline_svg
from policywatch.web.deps import (
    DocumentId,
    FilterDep,
    NewVersionId,
    OldVersionId,
    PageDep,
    SessionDep,
    VersionId,
)
from policywatch.web.diffs import ComputedDiff, Pair, diff_of
from policywatch.web.diffview import change_counts, fold
from policywatch.web.links import href
from policywatch.web.params import EVENT_KINDS, MARK_FILTERS, checked_id, kept
from policywatch.web.triage import triage_context
from storage.models import ChangeEvent
from storage.queries import (
    changes_per_day,
    document_detail,
    event_json,
    filtered_changes,
    get_version,
    list_sources,
    source_health,
)

router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


def _raw_filters(request: Request) -> dict[str, str | None]:
    q = request.query_params
    return {k: q.get(k) for k in ("source", "kind", "relevant", "since", "until", "mark", "per_page")}


@router.get("/", response_class=HTMLResponse, name="changes")
@router.get("/changes", response_class=HTMLResponse)
def changes_page(request: Request, session: SessionDep, where: FilterDep, page: PageDep) -> Response:
    rows, has_next = page.cut(filtered_changes(session, where, limit=page.fetch, offset=page.offset))
    raw = kept(_raw_filters(request))
    return render(
        request,
        "changes.html",
        {
            "rows": rows,
            "sources": list_sources(session),
            "kinds": EVENT_KINDS,
            "mark_filters": MARK_FILTERS,
            "triage": triage_context(request, session),
            "filters": _raw_filters(request),
            "page": page,
            "prev_url": href(request, "/changes", **raw, page=page.number - 1) if page.number > 1 else None,
            "next_url": href(request, "/changes", **raw, page=page.number + 1) if has_next else None,
            "export_csv": href(request, "/export/changes.csv", **raw),
            "export_json": href(request, "/export/changes.json", **raw),
            "feed_url": href(request, "/feed/changes.atom", source=where.source),
        },
    )


def _event_link(request: Request, event: dict[str, Any]) -> str | None:
    if event["old_version_id"] and event["new_version_id"]:
        return href(request, f"/diff/{event['old_version_id']}/{event['new_version_id']}")
    version = event["new_version_id"] or event["old_version_id"]
    return href(request, f"/versions/{version}") if version else None


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_page(request: Request, session: SessionDep, document_id: DocumentId) -> Response:
    detail = document_detail(session, document_id)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"no document {document_id}")
    chart = timeline_svg(
        detail["versions"],
        detail["events"],
        link_for_event=lambda e: _event_link(request, dict(e)),
        link_for_version=lambda v: href(request, f"/versions/{v['id']}"),
    )
    versions = detail["versions"]
    pairs = [(versions[i - 1], versions[i]) for i in range(1, len(versions))]
    return render(
        request,
        "document.html",
        {
            "doc": detail,
            "chart": chart,
            "pairs": pairs,
            "event_link": lambda e: _event_link(request, e),
            "kinds_colours": True,
            "graph": document_graph(session, document_id),
            "triage": triage_context(request, session),
        },
    )


@router.get("/versions/{version_id}", response_class=HTMLResponse)
def version_page(request: Request, session: SessionDep, version_id: VersionId) -> Response:
    version = get_version(session, version_id)
    if version is None:
        raise HTTPException(status_code=404, detail=f"no version {version_id}")
    return render(request, "version.html", {"version": version, "paragraphs": version.paragraphs})


@router.get("/diff", response_class=HTMLResponse)
def diff_form(
    request: Request,
    old: Annotated[int, Query(description="old version id")],
    new: Annotated[int, Query(description="new version id")],
    mode: str = "side",
) -> Response:
    for version in (old, new):
        checked_id(version, "version")  # ids beyond 64 bits: 404 here, not a redirect to one
    return RedirectResponse(href(request, f"/diff/{old}/{new}", mode=mode), status_code=303)


def _diff_response(request: Request, pair: Pair, computed: ComputedDiff, mode: str, context: int) -> Response:
    old_id, new_id = pair.old.id, pair.new.id
    with request.app.state.store.session() as session:
        events = [
            {**event_json(e), "history": mark_history(session, e.id)}
            for e in session.scalars(
                select(ChangeEvent)
                .where(ChangeEvent.old_version_id == old_id, ChangeEvent.new_version_id == new_id)
                .order_by(ChangeEvent.id)
            )
        ]
        triage = triage_context(request, session)
    return render(
        request,
        "diff.html",
        {
            "events": events,
            "triage": triage,
            "old": pair.old,
            "new": pair.new,
            "doc": pair.document,
            "same_document": pair.old.document_id == pair.new.document_id,
            "diff": computed.diff,
            "sections": fold(computed.rows, context),
            "counts": change_counts(computed.diff),
            "mode": mode,
            "context": context,
            "side_url": href(request, f"/diff/{old_id}/{new_id}", mode="side", context=context),
            "inline_url": href(request, f"/diff/{old_id}/{new_id}", mode="inline", context=context),
            "json_url": href(request, f"/api/diff/{old_id}/{new_id}"),
        },
    )


@router.get("/diff/{old_id}/{new_id}", response_class=HTMLResponse)
async def diff_page(
    request: Request,
    old_id: OldVersionId,
    new_id: NewVersionId,
    mode: Annotated[str, Query(pattern="^(side|inline)$")] = "side",
    context: Annotated[int, Query(ge=0, le=50)] = 2,
) -> Response:
    # Versions read on a request thread, the diff computed once on a thread of its own (web.diffs),
    # the page (large for a large document) rendered on a request thread: never on the event loop.
    pair, computed = await diff_of(request, old_id, new_id, with_document=True)
    return await run_in_threadpool(_diff_response, request, pair, computed, mode, context)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request, session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> Response:
    now = datetime.now(UTC)
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = changes_per_day(session, since)
    health = source_health(session, now - timedelta(days=days))
    sources = [s["id"] for s in health] or sorted({c["source"] for c in counts})
    for extra in sorted({c["source"] for c in counts} - set(sources)):
        sources.append(extra)
    dates = day_range(since, now)
    index = {d: i for i, d in enumerate(dates)}
    series = {s: [0] * len(dates) for s in sources}
    for c in counts:
        if c["day"] in index:
            series[c["source"]][index[c["day"]]] += c["count"]
    return render(
        request,
        "dashboard.html",
        {
            "days": days,
            "chart": stacked_bars_svg(dates, series),
            "legend": [(s, colour_for(n), sum(series[s])) for n, s in enumerate(sources)],
            "health": health,
        },
    )
