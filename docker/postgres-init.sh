#!/bin/bash
# Two databases on one server: Airflow's metadata and PolicyWatch's version store, with the
# passwords docker-compose.yml passes (AIRFLOW_DB_PASSWORD, POLICYWATCH_DB_PASSWORD; see .env).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
  -v airflow_password="${AIRFLOW_DB_PASSWORD:?}" -v policywatch_password="${POLICYWATCH_DB_PASSWORD:?}" <<'SQL'
CREATE USER airflow WITH PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE USER policywatch WITH PASSWORD :'policywatch_password';
CREATE DATABASE policywatch OWNER policywatch;
SQL
