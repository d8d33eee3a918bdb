#!/usr/bin/env bash
# Admin review queue benchmark (10,000 pending proofs): see bench/admin_queue.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
source scripts/services.sh
trap services_stop EXIT
services_start
# The benchmark creates its own throwaway test database: it connects as the owner role,
# which may (the application role may not create databases; kobatela.core.roles).
export DATABASE_URL=$DATABASE_OWNER_URL
export DJANGO_SETTINGS_MODULE=tests.settings LOG_LEVEL=WARNING
.venv/bin/python bench/admin_queue.py
