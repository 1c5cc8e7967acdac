"""Triage marks on changes (alerts.marks): the forms of the change list, document and diff pages,
and the JSON API.

Who marks: inside Airflow, the Airflow user whose JWT web.airflow_auth validated; standalone
(`policywatch web`), the local user: $POLICYWATCH_WEB_USER, else the account that runs the server.

Writes are protected against cross-site requests: a form POST must carry the form token of the
signed-in user (an HMAC under the store's secret, which only a page of this app shows that user);
the JSON API takes `Content-Type: application/json` only, which a page of another site cannot send
here without a CORS preflight that this app never answers.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from alerts.marks import (
    CLEARED,
    MARK_LABELS,
    MARKS,
    MarkError,
    NoSuchChange,
    mark_change,
    mark_history,
    valid_form_token,
)
from alerts.marks import form_token as make_form_token
from policywatch.web.links import base_path
from policywatch.web.params import checked_id
from storage.db import session_factory, unit_of_work
from storage.models import ChangeMark, StoreIdentity
from storage.queries import iso

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["api"])

MAX_FORM_BYTES = 16 * 1024


def current_user(request: Request) -> str:
    """The signed-in user (see the module docstring)."""
    airflow_user = getattr(request.state, "airflow_user", None)
    if airflow_user is not None:
        name = getattr(airflow_user, "get_name", None)
        return str(name() if callable(name) else airflow_user)
    return os.environ.get("POLICYWATCH_WEB_USER", "").strip() or getpass.getuser()


def _factory(request: Request) -> sessionmaker[Session]:
    store = request.app.state.store
    store.ensure_ready()
    return session_factory(store.engine)


def _secret(request: Request, session: Session | None = None) -> bytes:
    """The store's secret, read once per process, through the request's own session when it has
    one: the admission gate counts one database connection per request."""
    secret = getattr(request.app.state, "mark_secret", None)
    if secret is None:
        from alerts.identity import identity_of, store_identity

        row = session.get(StoreIdentity, 1) if session is not None else None
        identity = identity_of(row) if row is not None else store_identity(_factory(request))
        secret = request.app.state.mark_secret = identity.secret
    return secret


def triage_context(request: Request, session: Session | None = None) -> dict[str, Any]:
    """What the mark forms of a page need: the user, their form token, the marks and their labels."""
    user = current_user(request)
    return {
        "user": user,
        "token": make_form_token(_secret(request, session), user),
        "marks": MARKS,
        "labels": MARK_LABELS,
        "next": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }


def mark_json(row: ChangeMark) -> dict[str, Any]:
    return {"event_id": row.event_id, "mark": row.mark, "note": row.note, "user": row.user, "at": iso(row.at)}


def _store(request: Request, event_id: int, mark: str, note: str) -> ChangeMark:
    try:
        with unit_of_work(_factory(request)) as session:
            result = mark_change(session, event_id, mark, note, current_user(request))
            session.expunge(result.mark)
            return result.mark
    except NoSuchChange:
        raise HTTPException(status_code=404, detail=f"no change {event_id}") from None
    except MarkError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def _local_next(request: Request, target: str | None) -> str:
    """Back to the page the form was on: a path inside this app, never another site."""
    base = base_path(request)
    fallback = f"{base}/changes"
    if not target:
        return fallback
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return fallback
    if base and not target.startswith(base + "/"):
        target = base + target
    return target


@router.post("/changes/{event_id}/mark")
async def mark_from_form(request: Request, event_id: Annotated[int, Path()]) -> Response:
    checked_id(event_id, "change")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status_code=413, detail="form too large")
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    secret = await run_in_threadpool(_secret, request)
    if not valid_form_token(secret, current_user(request), form.get("token", "")):
        raise HTTPException(status_code=403, detail="This form has expired or was not sent by this app.")
    await run_in_threadpool(_store, request, event_id, form.get("mark", ""), form.get("note", ""))
    return RedirectResponse(_local_next(request, form.get("next")) + f"#change-{event_id}", status_code=303)


class MarkIn(BaseModel):
    mark: str = Field(description=f"one of {', '.join((*MARKS, CLEARED))}")
    note: str = Field(default="", max_length=2000)


class MarkOut(BaseModel):
    event_id: int
    mark: str
    note: str
    user: str
    at: str


@api_router.get(
    "/changes/{event_id}/marks", response_model=list[MarkOut], summary="A change's marks, oldest first"
)
def api_marks(request: Request, event_id: Annotated[int, Path()]) -> list[dict[str, Any]]:
    checked_id(event_id, "change")
    from storage.models import ChangeEvent

    with _factory(request)() as session:
        if session.get(ChangeEvent, event_id) is None:
            raise HTTPException(status_code=404, detail=f"no change {event_id}")
        return [mark_json(row) for row in mark_history(session, event_id)]


@api_router.post(
    "/changes/{event_id}/marks", response_model=MarkOut, status_code=201, summary="Mark a change (triage)"
)
async def api_mark(request: Request, event_id: Annotated[int, Path()]) -> Response:
    checked_id(event_id, "change")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(status_code=415, detail="send the mark as application/json")
    try:
        given = MarkIn.model_validate_json(await request.body())
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=f"not a mark: {exc}") from None
    row = await run_in_threadpool(_store, request, event_id, given.mark, given.note)
    return JSONResponse(mark_json(row), status_code=201)
