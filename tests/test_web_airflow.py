"""The web app as an Airflow plugin: Airflow loads it, shows its navigation link, mounts it at
/policywatch in its real API server app, and refuses anyone not logged in to Airflow.

Airflow runs in subprocesses with their own AIRFLOW_HOME (its configuration is read at import), so
nothing of it leaks into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.site import LocalSite
from tests.test_web_support import build_world

PROJECT = Path(__file__).resolve().parent.parent
AIRFLOW = Path(sys.executable).with_name("airflow")
PASSWORD = "pw-test-password"


def airflow_env(home: Path, store_url: str) -> dict[str, str]:
    # An empty plugins folder: the plugin must come from the package's `airflow.plugins` entry point,
    # as it does under `make run` and in the production image.
    plugins = home / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(exist_ok=True)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"analyst": PASSWORD}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "analyst:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__API_AUTH__JWT_SECRET": "policywatch-test-secret-0123456789abcdef",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "POLICYWATCH_DATABASE_URL": store_url,
            "PYTHONPATH": str(PROJECT),
        }
    )
    return env


def run(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=timeout)


# Runs inside the Airflow subprocess: Airflow's own API server app, with its plugins and auth manager.
PROBE = r"""
import json
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

out = {}
with TestClient(create_app("core")) as client:
    anon = client.get("/policywatch/api/changes", headers={"Accept": "application/json"})
    out["anonymous_api"] = [anon.status_code, anon.headers.get("www-authenticate")]
    page = client.get("/policywatch/changes", headers={"Accept": "text/html"}, follow_redirects=False)
    out["anonymous_page"] = [page.status_code, page.headers.get("location")]
    forged = client.get("/policywatch/api/changes", headers={"Authorization": "Bearer not.a.token"})
    out["forged"] = forged.status_code
    login = client.post("/auth/token", json={"username": "analyst", "password": PASSWORD})
    token = login.json()["access_token"]
    bearer = {"Authorization": "Bearer " + token}
    api = client.get("/policywatch/api/changes", headers=bearer)
    out["bearer_api"] = [api.status_code, len(api.json().get("items", [])) if api.status_code == 200 else 0]
    first = api.json()["items"][0]["id"]
    marked = client.post(f"/policywatch/api/changes/{first}/marks", headers=bearer, json={"mark": "reviewed"})
    out["api_mark"] = [marked.status_code, marked.json().get("user")]
    client.cookies.set("_token", token)
    html = client.get("/policywatch/changes", headers={"Accept": "text/html"})
    out["cookie_page"] = [html.status_code, 'href="/policywatch/documents/' in html.text]
    import re
    form_token = re.search(r'name="token" value="([0-9a-f]+)"', html.text).group(1)
    form = client.post(
        f"/policywatch/changes/{first}/mark",
        data={"mark": "important", "note": "", "token": form_token, "next": "/policywatch/changes"},
        follow_redirects=False,
    )
    out["form_mark"] = [form.status_code, form.headers.get("location"), first]
    audit = client.get(f"/policywatch/api/changes/{first}/marks").json()
    out["audit"] = [(m["mark"], m["user"]) for m in audit]
    client.cookies.clear()
    plugins = client.get("/api/v2/plugins", headers=bearer).json()["plugins"]
    out["plugins"] = [p for p in plugins if p["name"] == "policywatch"]
print("PROBE" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    home = tmp_path_factory.mktemp("airflow")
    site = LocalSite()
    try:
        store = f"sqlite:///{home / 'policywatch.db'}"
        build_world(site, store)
    finally:
        site.close()
    migrate = run([str(AIRFLOW), "db", "migrate"], airflow_env(home, store))
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    yield home, store


def test_airflow_lists_the_plugin_with_its_navigation_link(airflow_home: tuple[Path, str]) -> None:
    home, store = airflow_home
    listed = run([str(AIRFLOW), "plugins", "--output", "json"], airflow_env(home, store))
    assert listed.returncode == 0, listed.stderr[-3000:]
    [plugin] = [p for p in json.loads(listed.stdout) if p["name"] == "policywatch"]
    assert plugin["fastapi_apps"] == [
        {"app": "fastapi.applications.FastAPI", "url_prefix": "/policywatch", "name": "PolicyWatch"}
    ]
    [view] = plugin["external_views"]
    assert view["destination"] == "nav" and view["href"] == "policywatch/" and view["url_route"]


def test_mounted_app_refuses_anonymous_requests_and_answers_logged_in_users(
    airflow_home: tuple[Path, str],
) -> None:
    home, store = airflow_home
    probe = run(
        [sys.executable, "-c", f"PASSWORD = {PASSWORD!r}\n" + PROBE], airflow_env(home, store), timeout=300
    )
    assert probe.returncode == 0, probe.stderr[-4000:]
    line = next(x for x in probe.stdout.splitlines() if x.startswith("PROBE"))
    out = json.loads(line[len("PROBE") :])
    assert out["anonymous_api"][0] == 401 and out["anonymous_api"][1].startswith("Bearer")
    status, location = out["anonymous_page"]
    assert status == 302 and "/auth/login" in location and "next=" in location
    assert out["forged"] == 401
    assert out["bearer_api"][0] == 200 and out["bearer_api"][1] > 0
    assert out["cookie_page"] == [200, True]  # links carry the /policywatch mount prefix
    # Triage marks are the Airflow user's, by API (Bearer) and by the page's form (cookie + form token).
    assert out["api_mark"] == [201, "analyst"]
    status, location, change = out["form_mark"]
    assert status == 303 and location == f"/policywatch/changes#change-{change}"
    assert out["audit"] == [["reviewed", "analyst"], ["important", "analyst"]]
    [plugin] = out["plugins"]
    [view] = plugin["external_views"]
    assert view["name"] == "PolicyWatch" and view["destination"] == "nav"
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/policywatch"
