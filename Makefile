# PolicyWatch: `make run` sets everything up and runs the pipeline; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lock test test-fast lint format run bench bench-floor bench-workers clean services browser bytecode

setup: $(STAMP)

# constraints.txt: the exact versions CI tested (reproducible installs; `make lock` renews it).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,airflow,celery]'
	touch $(STAMP)

# Resolve pyproject.toml's ranges afresh in a new venv and pin the result in constraints.txt.
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/python -m pip install --quiet --upgrade pip
	$(VENV).lock/bin/python -m pip install --quiet -e '.[dev,airflow,celery]'
	{ sed -n '1,/^# pyproject/p' constraints.txt; $(VENV).lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf $(VENV).lock

services:
	scripts/ensure-services.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The project's modules compiled once (up-to-date ones are skipped): with PYTHONDONTWRITEBYTECODE
# set, as on this machine and in many images, every process (each CLI call, Airflow's DAG parsing,
# each test subprocess) would otherwise compile them from source again.
bytecode: setup
	$(BIN)/python -m compileall -q -j 0 alerts crawlers dags policywatch storage

# Debian's chromium for tests/test_browser.py (installed only when missing).
browser:
	scripts/ensure-browser.sh

test: setup services browser lint bytecode
	$(BIN)/pytest -n 2 --dist loadfile -q --durations=25

# The quick loop while developing: no Airflow, no browser, no PostgreSQL half, no slow fault and
# load tests (`make test` runs them all, as CI does).
test-fast: setup lint bytecode
	$(BIN)/pytest -n 2 --dist loadfile -q -m "not slow and not airflow and not browser and not postgres"

# The pipeline (scripts/run-local.sh) plus the web app and, without POLICYWATCH_SMTP_URL, a local
# mail sink: alerts are sent and readable on the web app's Mail page (scripts/run-with-mail.sh).
run: setup bytecode
	scripts/run-with-mail.sh

# Every noise profile, 1,000 pages, median of 3, then the 10,000-page warm cycle (about half an hour);
# `make bench BENCH_ARGS=--quick`: 200 pages, one repetition (a few minutes).
bench: setup bytecode
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# What a page must cost per phase against what the goals leave it (the newest `make bench` result's
# urlwatch figures; a few minutes): `make bench-floor BENCH_ARGS="benchmarks/results/X.json"`.
bench-floor: setup bytecode
	$(BIN)/python -m benchmarks.floor $(BENCH_ARGS)

# One host, 1,000 documents, 20 ms politeness: the CeleryExecutor with 1, 2 and 4 workers, two noise
# profiles (about 15 minutes; needs PostgreSQL and Redis: `make services`).
bench-workers: setup services bytecode
	$(BIN)/python -m benchmarks.workers $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
