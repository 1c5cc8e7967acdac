"""Airflow login in front of the web app when it is mounted into Airflow's API server.

Airflow does not authenticate plugin FastAPI apps: every request must carry the JWT that Airflow's
auth manager issued at login (the `_token` cookie the Airflow UI sets, or `Authorization: Bearer`),
and the auth manager validates it (signature, expiry, revocation). Anonymous or invalid requests
are refused: browsers are sent to the Airflow login page, API clients get 401.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

TOKEN_COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


def auth_manager() -> Any:
    """The API server's auth manager (initialised at its start); created on first use elsewhere."""
    from airflow.api_fastapi.app import create_auth_manager, get_auth_manager

    try:
        return get_auth_manager()
    except RuntimeError:
        return create_auth_manager()


def request_token(request: Request) -> str | None:
    """An explicit Bearer credential wins over the session cookie, as in Airflow's own API."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


# A subscriber's own pages carry their credential in the path (a signed per-subscriber token) and
# must work without an Airflow account: RFC 8058's one-click POST comes from the mail provider.
TOKEN_PAGES = ("/unsubscribe/", "/preferences/")


def app_path(scope: Scope) -> str:
    """The request's path inside the app (without the /policywatch mount prefix)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", "")).rstrip("/")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class AirflowLoginRequired:
    """ASGI middleware: only requests with a valid Airflow JWT reach the app (except a
    subscriber's token pages, whose signed token is checked by the app itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or app_path(scope).startswith(TOKEN_PAGES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request_token(request)
        user = await self._user(token) if token else None
        if user is None:
            await self._refuse(request, "Not authenticated" if not token else "Invalid or expired token")(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})["airflow_user"] = user
        await self.app(scope, receive, send)

    async def _user(self, token: str) -> Any:
        from jwt import InvalidTokenError

        try:
            return await auth_manager().get_user_from_token(token)
        except InvalidTokenError as exc:  # bad signature, expired, revoked, malformed
            log.info("policywatch: refused an Airflow token: %s", exc)
            return None

    def _refuse(self, request: Request, reason: str) -> Response:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if wants_page:
            try:
                login = auth_manager().get_url_login(next_url=str(request.url))
            except Exception:  # an auth manager without a login page: fall back to a plain 401
                log.exception("policywatch: no Airflow login URL")
            else:
                return RedirectResponse(login, status_code=302)
        return JSONResponse(
            {"detail": reason},
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer realm="{quote("Airflow")}"'},
        )
