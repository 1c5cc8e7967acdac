"""The PolicyWatch web app as an Airflow 3 plugin: mounted at /policywatch in Airflow's API server,
with a navigation link in the Airflow UI, behind Airflow's login.

Airflow loads this through a module in its plugins folder (`from web.airflow_plugin import
PolicyWatchPlugin`) or the `airflow.plugins` entry point. The store is $POLICYWATCH_DATABASE_URL.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from policywatch.web.airflow_auth import AirflowLoginRequired
from policywatch.web.app import create_app

URL_PREFIX = "/policywatch"


def create_plugin_app() -> object:
    app = create_app(None)
    app.add_middleware(AirflowLoginRequired)
    return app


app = create_plugin_app()


# Module-level lists: AirflowPlugin declares these attributes as plain (instance) ones.
FASTAPI_APPS: list[dict[str, Any]] = [{"app": app, "url_prefix": URL_PREFIX, "name": "PolicyWatch"}]
# A top-level navigation entry: with url_route the UI shows the app inside Airflow (an iframe at
# /plugin/policywatch); the href is relative to Airflow's base URL.
EXTERNAL_VIEWS: list[dict[str, Any]] = [
    {
        "name": "PolicyWatch",
        "href": URL_PREFIX.lstrip("/") + "/",
        "destination": "nav",
        "url_route": "policywatch",
    }
]


class PolicyWatchPlugin(AirflowPlugin):
    name = "policywatch"
    fastapi_apps = FASTAPI_APPS
    external_views = EXTERNAL_VIEWS
