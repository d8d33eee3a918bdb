#!/usr/bin/env bash
# Proof pipeline benchmark (photo submission, OCR): see bench/proofs_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
source scripts/services.sh
trap services_stop EXIT
services_start
# The benchmark creates its own throwaway test database: it connects as the owner role,
# which may (the application role may not create databases; kobatela.core.roles).
export DATABASE_URL=$DATABASE_OWNER_URL
export DJANGO_SETTINGS_MODULE=tests.settings OMP_THREAD_LIMIT=1 LOG_LEVEL=WARNING
.venv/bin/python bench/proofs_bench.py
