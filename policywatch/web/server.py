"""`policywatch web`: the analyst web app on uvicorn, one worker process per core.

    python -m web.server [--host 127.0.0.1] [--port 8000] [--workers N]

Each worker process builds the app (`app_factory`, the store from $POLICYWATCH_DATABASE_URL) with
its own connection pool, admission gate and diff cache, sized by web.limits (POLICYWATCH_WEB_*).
The kernel spreads the connections over the workers; each one answers what it cannot take on with
an immediate 503 and Retry-After.
"""

from __future__ import annotations

import argparse
import os
import sys

from fastapi import FastAPI

from policywatch.web.limits import WebLimits

KEEP_ALIVE_S = 5  # idle keep-alive connections closed after this long (uvicorn's default)


def app_factory() -> FastAPI:
    """The app of one worker process (uvicorn imports this by name in each worker)."""
    from policywatch.web import create_app

    return create_app(None)


def serve(
    database_url: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int | None = None,
    log_level: str = "info",
) -> None:
    """Run the web app until interrupted. `database_url` None: $POLICYWATCH_DATABASE_URL (or the
    default SQLite file); the worker processes read it from the environment."""
    import uvicorn

    if database_url:
        os.environ["POLICYWATCH_DATABASE_URL"] = database_url
    limits = WebLimits.from_env()
    uvicorn.run(
        "policywatch.web.server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers or limits.workers,
        log_level=log_level,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=10,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    args = parser.parse_args(argv)
    from sqlalchemy.exc import SQLAlchemyError

    from storage.db import DatabaseError, ensure_schema, make_engine

    try:
        limits = WebLimits.from_env()
        engine = make_engine(None)
        ensure_schema(engine)  # fail here, with one line, when the database is unreachable
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()
    except (ValueError, DatabaseError, SQLAlchemyError) as exc:
        print(f"policywatch web: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    serve(url, host=args.host, port=args.port, workers=args.workers or limits.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
