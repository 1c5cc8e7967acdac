"""FastAPI dependencies: a read-only session per request, filters and pagination from the query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from storage.queries import ChangeFilter
from web.params import MAX_PER_PAGE, Page, change_filter, page_of


def session(request: Request) -> Iterator[Session]:
    yield from request.app.state.store.sessions()


def changes_filter(
    source: Annotated[str | None, Query(description="source id")] = None,
    kind: Annotated[str | None, Query(description="new, changed, removed, restored or republished")] = None,
    relevant: Annotated[str | None, Query(description="yes: digital-economy only; no: the others")] = None,
    since: Annotated[str | None, Query(description="ISO-8601 date or date-time, inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO-8601 date (whole day) or date-time")] = None,
) -> ChangeFilter:
    return change_filter(source=source, kind=kind, relevant=relevant, since=since, until=until)


def pagination(
    page: Annotated[int | None, Query(ge=1, description="1-based page number")] = None,
    per_page: Annotated[int | None, Query(ge=1, le=MAX_PER_PAGE, description="rows per page")] = None,
) -> Page:
    return page_of(page, per_page)


SessionDep = Annotated[Session, Depends(session)]
FilterDep = Annotated[ChangeFilter, Depends(changes_filter)]
PageDep = Annotated[Page, Depends(pagination)]
