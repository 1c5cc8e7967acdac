"""Links inside the app that work both standalone and mounted under a prefix (Airflow's /policywatch)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request


def base_path(request: Request) -> str:
    """The path the app is mounted at ("" standalone, "/policywatch" inside Airflow)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def href(request: Request, path: str, **query: Any) -> str:
    """An absolute path into this app, with the non-empty query parameters."""
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    url = base_path(request) + path
    return url + ("?" + urlencode(params) if params else "")


def absolute(request: Request, path: str, **query: Any) -> str:
    """A full URL (scheme and host) into this app: for feeds, which readers fetch out of context."""
    origin = f"{request.url.scheme}://{request.url.netloc}"
    return origin + href(request, path, **query)
