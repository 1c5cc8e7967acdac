#!/usr/bin/env bash
# `make run` with mail a newcomer can read (issue 17). Without POLICYWATCH_SMTP_URL: a local mail sink
# (scripts/mail_sink.py, a real SMTP server on 127.0.0.1) that PolicyWatch and Airflow's
# `smtp_default` both send to. Always: the web app (`policywatch web`) on 127.0.0.1:8000, whose Mail
# page lists every alert, digest and notice sent, and POLICYWATCH_PUBLIC_URL pointing at it (links
# and one-click unsubscribe in the mails). Then the pipeline itself: scripts/run-local.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
WEB_PORT=${POLICYWATCH_WEB_PORT:-8000}
SINK_PORT=${POLICYWATCH_MAIL_SINK_PORT:-8025}
# The same defaults as run-local.sh, so the web app reads the store the pipeline writes.
export POLICYWATCH_DATABASE_URL=${POLICYWATCH_DATABASE_URL:-sqlite:///$ROOT/var/policywatch.db}
export POLICYWATCH_PUBLIC_URL=${POLICYWATCH_PUBLIC_URL:-http://127.0.0.1:$WEB_PORT}
mkdir -p "$ROOT/var/log" "$ROOT/var/mail"

pids=()
stop_ours() {
  trap - INT TERM EXIT
  set +e
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap stop_ours INT TERM EXIT

wait_for_port() {  # port, what, log
  for _ in $(seq 1 100); do
    if "$BIN/python" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "$2 did not start on 127.0.0.1:$1: see $3" >&2
  exit 1
}

if [ -z "${POLICYWATCH_SMTP_URL:-}" ]; then
  echo "== starting the local mail sink on smtp://127.0.0.1:$SINK_PORT (POLICYWATCH_SMTP_URL is not set)"
  setsid "$BIN/python" "$ROOT/scripts/mail_sink.py" --port "$SINK_PORT" --dir "$ROOT/var/mail" \
    > "$ROOT/var/log/mail-sink.log" 2>&1 &
  pids+=($!)
  wait_for_port "$SINK_PORT" "the mail sink" var/log/mail-sink.log
  export POLICYWATCH_SMTP_URL=smtp://127.0.0.1:$SINK_PORT
  # Airflow's own notifiers read smtp_default: the same plain local server (alerts.smtp reads the
  # connection as Airflow does, so both disable_* extras say "no TLS" to both).
  export AIRFLOW_CONN_SMTP_DEFAULT="{\"conn_type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": $SINK_PORT, \"extra\": {\"disable_ssl\": true, \"disable_tls\": true, \"from_email\": \"${POLICYWATCH_MAIL_FROM:-policywatch@localhost}\"}}"
  export POLICYWATCH_OPERATOR_EMAILS=${POLICYWATCH_OPERATOR_EMAILS:-operator@localhost}
fi

echo "== starting the web app on $POLICYWATCH_PUBLIC_URL (log: var/log/web.log)"
"$BIN/policywatch" db upgrade > /dev/null
setsid "$BIN/policywatch" web --host 127.0.0.1 --port "$WEB_PORT" > "$ROOT/var/log/web.log" 2>&1 &
pids+=($!)
wait_for_port "$WEB_PORT" "the web app" var/log/web.log
echo "   Mail page: $POLICYWATCH_PUBLIC_URL/mail   (make a change: .venv/bin/policywatch demo step)"

"$ROOT/scripts/run-local.sh"
