#!/usr/bin/env bash
# What `make test` runs: system packages, venv, throwaway PostgreSQL + Redis,
# then pytest with the given arguments. Exits with pytest's status; the
# servers are stopped on every exit path (success, failure, Ctrl-C, TERM).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-deps.sh

source scripts/python.sh
kob_venv_dev

source scripts/services.sh
trap services_stop EXIT
trap 'exit 130' INT    # exiting runs the EXIT trap, so stop happens exactly once
trap 'exit 143' TERM
services_start

export DJANGO_SETTINGS_MODULE=tests.settings
export DJANGO_DEBUG=false
export DJANGO_SECURE_SSL_REDIRECT=false
export OMP_THREAD_LIMIT=1   # tesseract: one thread per process, tests run in parallel

status=0
.venv/bin/python -m pytest "$@" || status=$?
exit "$status"
