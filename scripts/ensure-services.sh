#!/usr/bin/env bash
# Start the local services the tests need (PostgreSQL on 127.0.0.1:5432, Redis on 6379) when they are down.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1; then
  echo "ensure-services: PostgreSQL client tools are not installed (apt-get install postgresql)" >&2
  exit 1
fi
if ! pg_up; then
  echo "ensure-services: starting PostgreSQL" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "ensure-services: PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
echo "ensure-services: PostgreSQL is up on 127.0.0.1:5432"

# Redis on 127.0.0.1:6379: the Celery broker of tests/test_celery_engine.py.
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "ensure-services: starting Redis" >&2
    redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  fi
fi
redis_up || { echo "ensure-services: Redis is not answering on 127.0.0.1:6379 (apt-get install redis-server)" >&2; exit 1; }
echo "ensure-services: Redis is up on 127.0.0.1:6379"
