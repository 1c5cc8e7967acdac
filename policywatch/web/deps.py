"""FastAPI dependencies: a read-only session per request, filters and pagination from the query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from policywatch.web.params import MAX_PER_PAGE, Page, change_filter, checked_id, page_of
from storage.queries import ChangeFilter


def session(request: Request) -> Iterator[Session]:
    yield from request.app.state.store.sessions()


def changes_filter(
    source: Annotated[str | None, Query(description="source id")] = None,
    kind: Annotated[str | None, Query(description="new, changed, removed, restored or republished")] = None,
    relevant: Annotated[str | None, Query(description="yes: digital-economy only; no: the others")] = None,
    since: Annotated[str | None, Query(description="ISO-8601 date or date-time, inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO-8601 date (whole day) or date-time")] = None,
    mark: Annotated[
        str | None, Query(description="important, reviewed, not_significant, or unreviewed (no mark)")
    ] = None,
) -> ChangeFilter:
    return change_filter(source=source, kind=kind, relevant=relevant, since=since, until=until, mark=mark)


def pagination(
    page: Annotated[int | None, Query(ge=1, description="1-based page number")] = None,
    per_page: Annotated[int | None, Query(ge=1, le=MAX_PER_PAGE, description="rows per page")] = None,
) -> Page:
    return page_of(page, per_page)


def _document_id(document_id: Annotated[int, Path(description="document id")]) -> int:
    return checked_id(document_id, "document")


def _version_id(version_id: Annotated[int, Path(description="version id")]) -> int:
    return checked_id(version_id, "version")


def _old_id(old_id: Annotated[int, Path(description="the old version's id")]) -> int:
    return checked_id(old_id, "version")


def _new_id(new_id: Annotated[int, Path(description="the new version's id")]) -> int:
    return checked_id(new_id, "version")


SessionDep = Annotated[Session, Depends(session)]
# Ids in paths: beyond what the store can hold (64 bits) they name nothing: 404, never a 500.
DocumentId = Annotated[int, Depends(_document_id)]
VersionId = Annotated[int, Depends(_version_id)]
OldVersionId = Annotated[int, Depends(_old_id)]
NewVersionId = Annotated[int, Depends(_new_id)]
FilterDep = Annotated[ChangeFilter, Depends(changes_filter)]
PageDep = Annotated[Page, Depends(pagination)]
