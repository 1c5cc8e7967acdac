"""Subscribers' own pages (reached by the signed link in every mail, no login) and the operators'
views of subscribers, digest previews and sent mail.

- `/unsubscribe/{token}`: GET asks to confirm; POST with `List-Unsubscribe=One-Click` (RFC 8058, what
  mail providers send for the one-click button, and what the confirm button sends) stops every mail
  to that subscriber at once. A malformed, tampered or older token gets 403 and changes nothing.
- `/preferences/{token}`: sources, keywords, event kinds, immediate or digest, digest hour and zone;
  unsubscribe or subscribe again. Kept in the store (alerts.preferences), over the config.
- `/subscribers`, `/subscribers/{id}/digest`: who gets what, and the next digest as it would be sent.
- `/mail`, `/mail/{id}`: every mail sent (alerts, digests, operator notices), newest first, as the
  recipient sees it: the HTML part in a sandboxed frame (no scripts, no requests) and the text part.

These are the only pages of the app that write, each change one transaction of alerts.preferences.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from alerts import preferences as prefs
from alerts.identity import InvalidToken, display_zone_name, local_time, make_token, store_identity
from policywatch.web.deps import PageDep, SessionDep
from policywatch.web.links import href
from policywatch.web.params import checked_id
from storage.db import session_factory
from storage.models import OutboxMessage, SentMail, Subscriber

router = APIRouter(include_in_schema=False)

ONE_CLICK = "List-Unsubscribe=One-Click"
MAX_FORM_BYTES = 64 * 1024
COMMON_ZONES = ("Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Tokyo", "Europe/London", "UTC")


def _render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


def _factory(request: Request) -> sessionmaker[Session]:
    store = request.app.state.store
    store.ensure_ready()
    return session_factory(store.engine)


def _subscriber(request: Request, token: str) -> int:
    factory = _factory(request)
    try:
        return prefs.subscriber_for_token(factory, store_identity(factory), token)
    except InvalidToken as exc:
        # 403 whatever the reason: a forger learns nothing about which ids exist.
        raise HTTPException(status_code=403, detail=f"This link is not valid ({exc}).") from None


async def _form(request: Request) -> dict[str, list[str]]:
    """The form, size-capped: urlencoded (these pages, most RFC 8058 clients) or multipart/form-data
    (which RFC 8058 also allows)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status_code=413, detail="form too large")
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form()
        out: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                out.setdefault(key, []).append(value)
        return out
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(status_code=400, detail="the form must be UTF-8") from None
    return parse_qs(text, keep_blank_values=True)


# --- the subscriber's own pages -----------------------------------------------------------------------


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> Response:
    subscriber_id = _subscriber(request, token)
    with _factory(request)() as session:
        current = prefs.load(session, subscriber_id)
    assert current is not None
    return _render(
        request,
        "unsubscribe.html",
        {"p": current, "token": token, "done": False, "section": None},
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_one_click(request: Request, token: str) -> Response:
    subscriber_id = _subscriber(request, token)
    form = await _form(request)
    if form.get("List-Unsubscribe") != ["One-Click"]:
        raise HTTPException(status_code=400, detail=f"expected a POST of {ONE_CLICK} (RFC 8058)")
    factory = _factory(request)
    prefs.opt_out(factory, subscriber_id, "one-click")
    with factory() as session:
        current = prefs.load(session, subscriber_id)
    return _render(request, "unsubscribe.html", {"p": current, "token": token, "done": True, "section": None})


def _preferences_context(request: Request, subscriber_id: int, token: str, **extra: Any) -> dict[str, Any]:
    from storage.queries import list_sources

    factory = _factory(request)
    with factory() as session:
        current = prefs.load(session, subscriber_id)
        sources = list_sources(session)
    assert current is not None
    return {
        "p": current,
        "rule": current.rule,
        "token": token,
        "sources": sources,
        "kinds": prefs.EVENT_KINDS,
        "zones": COMMON_ZONES,
        "hours": range(24),
        "section": None,
        "error": None,
        "saved": False,
        **extra,
    }


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(request: Request, token: str) -> Response:
    subscriber_id = _subscriber(request, token)
    return _render(request, "preferences.html", _preferences_context(request, subscriber_id, token))


@router.post("/preferences/{token}", response_class=HTMLResponse)
async def preferences_save(request: Request, token: str) -> Response:
    subscriber_id = _subscriber(request, token)
    form = await _form(request)
    factory = _factory(request)
    action = (form.get("action") or ["save"])[-1]
    if action == "unsubscribe":
        prefs.opt_out(factory, subscriber_id, "page")
    elif action == "resubscribe":
        prefs.resubscribe(factory, subscriber_id)
        # The old link no longer works: continue on the new one.
        with factory() as session:
            generation = prefs.token_generation(session, subscriber_id)
        token = make_token(store_identity(factory), subscriber_id, generation)
    elif action == "follow-config":
        prefs.follow_config(factory, subscriber_id)
    elif action == "save":
        try:
            hour = int((form.get("digest_hour") or ["8"])[-1])
        except ValueError:
            hour = -1
        keywords = [
            k
            for line in form.get("keywords", [])
            for k in re.split(r"[,，、\n]", line)  # one a line, or separated by , ， or 、
        ]
        try:
            prefs.save(
                factory,
                subscriber_id,
                sources=form.get("sources", []),
                keywords=keywords,
                events=form.get("events", []),
                digest=(form.get("mode") or ["immediate"])[-1] == "digest",
                digest_hour=hour,
                digest_timezone=(form.get("digest_timezone") or [""])[-1].strip(),
                follows=[f for line in form.get("follows", []) for f in line.splitlines()],
            )
        except prefs.PreferenceError as exc:
            context = _preferences_context(request, subscriber_id, token, error=str(exc))
            return _render(request, "preferences.html", context, status_code=400)
    else:
        raise HTTPException(status_code=400, detail=f"unknown action {action!r}")
    context = _preferences_context(request, subscriber_id, token, saved=True)
    return _render(request, "preferences.html", context)


# --- operators: subscribers and their next digest ---------------------------------------------------


def operator_only(request: Request) -> None:
    """Subscribers' addresses and the mails (whose links carry their tokens) are for operators.

    POLICYWATCH_PUBLIC_URL makes the app reachable by subscribers, so these pages answer only behind
    the Airflow login (web.airflow_auth) or to a client on loopback that no proxy forwarded (the
    standalone app under `make run`); POLICYWATCH_OPERATOR_PAGES=open lifts that (a trusted
    network), =off closes them everywhere.
    """
    import ipaddress
    import os

    # An id the store cannot hold names nothing: 404 first, as on every route (web.params.checked_id).
    for name, value in request.path_params.items():
        if name.endswith("_id") and re.fullmatch(r"[+-]?[0-9]+", str(value)):
            checked_id(int(value), name.removesuffix("_id"))
    policy = (os.environ.get("POLICYWATCH_OPERATOR_PAGES") or "loopback").strip().lower()
    if policy == "open" or (policy != "off" and request.scope.get("state", {}).get("airflow_user")):
        return
    if policy == "loopback" and request.client is not None and "x-forwarded-for" not in request.headers:
        try:
            if ipaddress.ip_address(request.client.host).is_loopback:
                return
        except ValueError:
            pass
    raise HTTPException(
        status_code=403,
        detail="Operator pages (mail, subscribers) answer only behind the Airflow login or on loopback "
        "(POLICYWATCH_OPERATOR_PAGES).",
    )


OperatorOnly = Depends(operator_only)


@router.get("/subscribers", response_class=HTMLResponse, dependencies=[OperatorOnly])
def subscribers_page(request: Request, session: SessionDep) -> Response:
    from alerts.digest import digest_states
    from storage.models import utcnow

    now = utcnow()
    factory = _factory(request)
    states = {s.subscriber_id: s for s in digest_states(factory)}
    pending = dict(
        session.execute(
            select(OutboxMessage.subscriber_id, func.count(OutboxMessage.id))
            .where(OutboxMessage.status.in_(("pending", "sending")))
            .group_by(OutboxMessage.subscriber_id)
        ).all()
    )
    rows = []
    for subscriber in session.scalars(select(Subscriber).order_by(Subscriber.email)):
        current = prefs.load(session, subscriber.id)
        assert current is not None
        state = states.get(subscriber.id)
        rows.append(
            {
                "p": current,
                "pending": pending.get(subscriber.id, 0),
                "digest_rows": state.open_rows if state else 0,
                "next_digest": local_time(state.next_at(now)) if state else "",
            }
        )
    return _render(request, "subscribers.html", {"rows": rows, "section": "subscribers"})


@router.get("/subscribers/{subscriber_id}/digest", response_class=HTMLResponse, dependencies=[OperatorOnly])
def digest_preview_page(
    request: Request, subscriber_id: Annotated[int, Path(description="subscriber id")]
) -> Response:
    from alerts.digest import preview_digest
    from alerts.identity import public_url_from_env

    checked_id(subscriber_id, "subscriber")
    factory = _factory(request)
    with factory() as session:
        current = prefs.load(session, subscriber_id)
    if current is None:
        raise HTTPException(status_code=404, detail=f"no subscriber {subscriber_id}")
    try:
        public_url = public_url_from_env()
    except ValueError:
        public_url = None
    preview = preview_digest(request.app.state.store.engine, subscriber_id, public_url)
    return _render(
        request,
        "digest_preview.html",
        {
            "p": current,
            "preview": preview,
            "next_at": local_time(preview.next_at) if preview and preview.next_at else "",
            "section": "subscribers",
        },
    )


# --- operators: the mail sent ----------------------------------------------------------------------


@router.get("/mail", response_class=HTMLResponse, dependencies=[OperatorOnly])
def mail_page(request: Request, session: SessionDep, page: PageDep) -> Response:
    rows = list(
        session.execute(
            select(
                SentMail.id,
                SentMail.kind,
                SentMail.recipient,
                SentMail.subject,
                SentMail.sent_at,
                SentMail.message_id,
            )
            .order_by(SentMail.sent_at.desc(), SentMail.id.desc())
            .limit(page.fetch)
            .offset(page.offset)
        ).all()
    )
    rows, has_next = page.cut(rows)
    per = request.query_params.get("per_page")
    return _render(
        request,
        "mail.html",
        {
            "rows": rows,
            "page": page,
            "zone": display_zone_name(),
            "prev_url": href(request, "/mail", per_page=per, page=page.number - 1)
            if page.number > 1
            else None,
            "next_url": href(request, "/mail", per_page=per, page=page.number + 1) if has_next else None,
            "section": "mail",
        },
    )


def _sent(session: Session, mail_id: int) -> SentMail:
    checked_id(mail_id, "mail")
    mail = session.get(SentMail, mail_id)
    if mail is None:
        raise HTTPException(status_code=404, detail=f"no mail {mail_id}")
    return mail


@router.get("/mail/{mail_id}", response_class=HTMLResponse, dependencies=[OperatorOnly])
def mail_message_page(
    request: Request, session: SessionDep, mail_id: Annotated[int, Path(description="mail id")]
) -> Response:
    mail = _sent(session, mail_id)
    return _render(
        request,
        "mail_message.html",
        {"mail": mail, "html_url": href(request, f"/mail/{mail.id}/html"), "section": "mail"},
    )


@router.get("/mail/{mail_id}/html", response_class=HTMLResponse, dependencies=[OperatorOnly])
def mail_message_html(
    request: Request, session: SessionDep, mail_id: Annotated[int, Path(description="mail id")]
) -> Response:
    """The HTML part exactly as sent, for the frame of /mail/{id}. Its text came from watched
    pages: the sandbox CSP keeps scripts, forms and plugins off, whatever it holds."""
    mail = _sent(session, mail_id)
    return HTMLResponse(
        mail.html or "<p>(no HTML part)</p>",
        headers={
            "Content-Security-Policy": "sandbox allow-popups allow-popups-to-escape-sandbox; "
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            "X-Content-Type-Options": "nosniff",
        },
    )
