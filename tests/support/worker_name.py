"""Airflow's `hostname_callable` for test workers: two Celery workers on one machine, told apart."""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    return os.environ.get("POLICYWATCH_TEST_WORKER") or socket.getfqdn()
