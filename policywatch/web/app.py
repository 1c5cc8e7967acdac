"""`create_app(engine_or_url) -> FastAPI`: the analyst web app over the version store (read-only).

Standalone with `policywatch web` (web.server: one uvicorn worker process per core), or mounted
into Airflow's API server by web.airflow_plugin (which adds the Airflow login check in front of it).
Either way each process admits a bounded number of requests at once (web.admission, web.limits)
and computes each diff once (web.diffs).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from alerts.identity import display_zone_name, local_time, zone_label
from policywatch.web.admission import Admission, AdmissionGate, quiet_access_log
from policywatch.web.diffs import DiffCache
from policywatch.web.limits import WebLimits
from policywatch.web.links import href
from policywatch.web.store import Store, pool_capacity

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    # Autoescaping is on for .html (Starlette's default); make it explicit for every template.
    templates.env.autoescape = True
    templates.env.globals["href"] = href
    # Times for people: the display zone (北京时间 by default, POLICYWATCH_DISPLAY_TIMEZONE), no microseconds.
    templates.env.filters["local_time"] = local_time
    templates.env.globals["display_zone"] = zone_label(display_zone_name())
    return templates


def _wants_html(request: Request) -> bool:
    """Errors of pages are pages; of the API, exports and feeds (or asked as JSON) JSON."""
    path = request.url.path[len(str(request.scope.get("root_path", ""))) :]
    if path.startswith(("/api", "/export", "/feed")):
        return False
    return "application/json" not in request.headers.get("accept", "")


def _store_busy(exc: DBAPIError) -> bool:
    """A database that is momentarily busy or unreachable (not a bug in a query)."""
    message = str(exc.orig).lower()
    return exc.connection_invalidated or "database is locked" in message or "database is busy" in message


def create_app(engine_or_url: Engine | str | None = None, limits: WebLimits | None = None) -> FastAPI:
    """The web app over the store at `engine_or_url` (an Engine, a URL, or None for
    $POLICYWATCH_DATABASE_URL / the default SQLite file). No database is touched until a request.
    `limits`: how much work a process takes on at once (default: from the environment)."""
    from policywatch.web import api, compare, exports, pages, search, subscribers, triage

    limits = limits or WebLimits.from_env()

    app = FastAPI(
        title="PolicyWatch",
        summary="Versions and changes of Chinese digital-economy policy pages (read-only).",
        version="1",
        openapi_url="/api/openapi.json",
        # Swagger UI and ReDoc load their scripts from a CDN: none here, the OpenAPI JSON is enough.
        docs_url=None,
        redoc_url=None,
    )
    app.state.limits = limits
    app.state.store = Store(engine_or_url, connections=limits.concurrency)
    app.state.templates = make_templates()
    app.state.diffs = DiffCache(limits)
    # Never more requests at once than the pool has connections (an engine passed in keeps its pool).
    capacity = pool_capacity(app.state.store.engine)
    app.state.admission = Admission(
        limit=min(limits.concurrency, capacity) if capacity else limits.concurrency,
        queue=limits.queue,
        wait_s=limits.queue_wait_s,
        retry_after_s=limits.retry_after_s,
    )
    app.add_middleware(AdmissionGate, admission=app.state.admission)
    quiet_access_log()
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(search.router)
    app.include_router(search.api_router)
    app.include_router(compare.router)
    app.include_router(compare.api_router)
    app.include_router(triage.router)
    app.include_router(triage.api_router)
    app.include_router(exports.router)
    app.include_router(subscribers.router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_html(request):
            retry = (exc.headers or {}).get("Retry-After")
            return app.state.templates.TemplateResponse(
                request,
                "error.html",
                {
                    "status": exc.status_code,
                    "detail": exc.detail,
                    "refresh": retry if exc.status_code == 503 and request.method == "GET" else None,
                },
                status_code=exc.status_code,
                headers=exc.headers,
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    def busy(detail: str) -> HTTPException:
        return HTTPException(
            status_code=503, detail=detail, headers={"Retry-After": str(limits.retry_after_s)}
        )

    @app.exception_handler(PoolTimeout)
    async def no_connection(request: Request, exc: PoolTimeout) -> Response:
        # Not expected: the gate admits no more requests than the pool has connections.
        log.warning("policywatch web: no database connection free: %s", exc)
        return await http_error(request, busy("No database connection is free: retry in a moment."))

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> Response:
        if not _store_busy(exc):
            raise exc  # a real error: a 500 with its traceback in the log
        log.warning("policywatch web: the version store is busy or unreachable: %s", exc.orig)
        return await http_error(request, busy("The version store is busy or unreachable: retry in a moment."))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors()
        )
        return await http_error(request, HTTPException(status_code=400, detail=problems))

    return app
