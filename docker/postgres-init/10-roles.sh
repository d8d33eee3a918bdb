#!/bin/bash
# Run once by the postgres image on a new data directory (docker-entrypoint-initdb.d),
# as its bootstrap superuser: creates the owner and application roles (scripts/db-roles.sql,
# mounted at /kobatela/db-roles.sql) and hands the database to the owner.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner="$KOBATELA_DB_OWNER" -v app="$KOBATELA_DB_APP" \
  -v owner_password="$KOBATELA_DB_OWNER_PASSWORD" -v app_password="$KOBATELA_DB_APP_PASSWORD" \
  -v db="$POSTGRES_DB" -f /kobatela/db-roles.sql
