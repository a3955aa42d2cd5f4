#!/usr/bin/env bash
# Create the Airflow and sharehub metadata databases on first start of the PostgreSQL container.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE USER airflow WITH PASSWORD '${AIRFLOW_DB_PASSWORD}';
CREATE DATABASE airflow OWNER airflow;
CREATE USER sharehub WITH PASSWORD '${HUB_DB_PASSWORD}';
CREATE DATABASE sharehub OWNER sharehub;
SQL
