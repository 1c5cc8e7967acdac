"""`create_app(engine_or_url) -> FastAPI`: the analyst web app over the version store (read-only).

Standalone with `policywatch web`, or mounted into Airflow's API server by web.airflow_plugin (which
adds the Airflow login check in front of it).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from web.links import href
from web.store import Store

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    # Autoescaping is on for .html (Starlette's default); make it explicit for every template.
    templates.env.autoescape = True
    templates.env.globals["href"] = href
    return templates


def _wants_html(request: Request) -> bool:
    """Errors of pages are pages; of the API, exports and feeds (or asked as JSON) JSON."""
    path = request.url.path[len(str(request.scope.get("root_path", ""))) :]
    if path.startswith(("/api", "/export", "/feed")):
        return False
    return "application/json" not in request.headers.get("accept", "")


def create_app(engine_or_url: Engine | str | None = None) -> FastAPI:
    """The web app over the store at `engine_or_url` (an Engine, a URL, or None for
    $POLICYWATCH_DATABASE_URL / the default SQLite file). No database is touched until a request."""
    from web import api, exports, pages

    app = FastAPI(
        title="PolicyWatch",
        summary="Versions and changes of Chinese digital-economy policy pages (read-only).",
        version="1",
        openapi_url="/api/openapi.json",
        # Swagger UI and ReDoc load their scripts from a CDN: none here, the OpenAPI JSON is enough.
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = Store(engine_or_url)
    app.state.templates = make_templates()
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(exports.router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_html(request):
            return app.state.templates.TemplateResponse(
                request,
                "error.html",
                {"status": exc.status_code, "detail": exc.detail},
                status_code=exc.status_code,
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors()
        )
        return await http_error(request, HTTPException(status_code=400, detail=problems))

    return app
