"""Prepare an Airflow installation for PolicyWatch: one pool per watched host (politeness).

Used by `make run` and by the docker-compose init container: `python -m policywatch.airflow_setup`.
No Airflow import at module level, so the DAG file and tests can use the pool names cheaply.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from policywatch.config import Config, SourceConfig, load_config


def pool_name(host: str) -> str:
    """One pool per host: with one slot, two batches that fetch from one host never run at once."""
    return "policywatch_" + (re.sub(r"[^a-z0-9]+", "_", host.lower()).strip("_") or "unknown")


def listing_pool(source: SourceConfig) -> str:
    """The pool of the source's discovery: the host of its first configured URL."""
    return pool_name(urlsplit(source.configured_urls[0]).hostname or "")


def document_pool(source: SourceConfig) -> str:
    """The pool of the source's document batches: the host its documents are fetched from
    (`document_hosts`, else its configured URLs'), so two sources whose documents live on
    www.gov.cn share one pool whatever hosts their listings are on."""
    hosts = source.fetch_hosts
    return pool_name(hosts[0]) if hosts else listing_pool(source)


def pools(config: Config) -> dict[str, str]:
    result: dict[str, str] = {}
    for source in config.sources:
        for host in (*source.fetch_hosts, urlsplit(source.configured_urls[0]).hostname or ""):
            result.setdefault(pool_name(host), host)
    return result


def create_pools(config: Config, airflow: str | None = None) -> list[str]:
    # The airflow command of this interpreter's environment (the venv), whatever PATH says.
    airflow = airflow or str(Path(sys.executable).with_name("airflow"))
    created = []
    for name, host in pools(config).items():
        subprocess.run(
            [airflow, "pools", "set", name, "1", f"PolicyWatch: requests to {host}, one batch at a time"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        created.append(name)
    return created


def main() -> int:
    config = load_config(sys.argv[1] if len(sys.argv) > 1 else None)
    for name in create_pools(config):
        print(f"pool {name}: 1 slot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
