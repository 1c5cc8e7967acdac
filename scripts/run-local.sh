#!/usr/bin/env bash
# `make run`: the embedded default. SQLite for the version store and Airflow's metadata, the local demo
# sources on 127.0.0.1:8765, and `airflow standalone` (UI on http://127.0.0.1:8080). Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
export PATH=$BIN:$PATH  # airflow standalone starts its components as `airflow …`

export AIRFLOW_HOME=$ROOT/var/airflow
export POLICYWATCH_CONFIG=${POLICYWATCH_CONFIG:-$ROOT/config/demo.yaml}
export POLICYWATCH_DATABASE_URL=${POLICYWATCH_DATABASE_URL:-sqlite:///$ROOT/var/policywatch.db}
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
# Two cores: a few tasks at a time is what this machine can run without starving the scheduler.
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=2
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$AIRFLOW_HOME/passwords.json
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=8080
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=True
DEMO_PORT=${POLICYWATCH_DEMO_PORT:-8765}

mkdir -p "$AIRFLOW_HOME" "$ROOT/var/log"
if [ ! -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ]; then
  password=$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(9))')
  printf '{"admin": "%s"}\n' "$password" > "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
fi
password=$("$BIN/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' \
  "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")

pids=()
cleanup() {
  trap - INT TERM EXIT
  trap '' PIPE  # the terminal (or a pipe) may already be gone: stop the children first, talk after
  set +e
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; done
  wait 2>/dev/null
  echo "PolicyWatch stopped." >&2
}
trap cleanup INT TERM EXIT

echo "== preparing the version store and Airflow (SQLite under var/)"
"$BIN/policywatch" db upgrade
"$BIN/airflow" db migrate > "$ROOT/var/log/airflow-db-migrate.log" 2>&1

echo "== starting the local demo sources on http://127.0.0.1:$DEMO_PORT"
setsid "$BIN/policywatch" demo serve --port "$DEMO_PORT" > "$ROOT/var/log/demo-site.log" 2>&1 &
pids+=($!)

echo "== starting airflow standalone (log: var/log/airflow-standalone.log)"
setsid "$BIN/airflow" standalone > "$ROOT/var/log/airflow-standalone.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 180); do
  if curl -fsS http://127.0.0.1:8080/api/v2/monitor/health > /dev/null 2>&1; then break; fi
  sleep 2
done
curl -fsS http://127.0.0.1:8080/api/v2/monitor/health > /dev/null || { echo "Airflow did not come up: see var/log/airflow-standalone.log"; exit 1; }

cat <<MSG

PolicyWatch is running.
  Airflow UI:  http://127.0.0.1:8080   login: admin / $password
  Demo sources: http://127.0.0.1:$DEMO_PORT/   (make the next change happen: .venv/bin/policywatch demo step)
  CLI:         .venv/bin/policywatch changes
Press Ctrl-C to stop everything.
MSG
wait
