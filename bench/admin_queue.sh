#!/usr/bin/env bash
# Admin review queue benchmark (10,000 pending proofs): see bench/admin_queue.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
source scripts/services.sh
trap services_stop EXIT
services_start
export DJANGO_SETTINGS_MODULE=tests.settings LOG_LEVEL=WARNING
.venv/bin/python bench/admin_queue.py
