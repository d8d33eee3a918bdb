#!/usr/bin/env bash
# Install the system programs the test suite needs, and only the missing ones.
# Idempotent: when everything is present it prints one line and touches nothing.
# CI runs on a fresh Debian 12 machine as root, so this must work from nothing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }

# PostgreSQL server binaries live outside PATH on Debian.
have_pg_server() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_isready" ] && return 0
  done
  return 1
}

# OCR of French and English invoices needs both language data files.
have_tesseract_langs() {
  have tesseract || return 1
  local langs
  langs=$(tesseract --list-langs 2>&1) || return 1
  grep -qx fra <<<"$langs" && grep -qx eng <<<"$langs"
}

# test.sh makes .venv with `<python> -m venv` (scripts/python.sh), which on
# Debian needs python3-venv.
source scripts/python.sh
have_venv_support() {
  kob_venv_current && return 0
  local py
  py=$(kob_python) || return 1
  "$py" -c 'import ensurepip, venv' >/dev/null 2>&1
}

# One line per need: "<check command>|<Debian packages that satisfy it>".
# To add a dependency, add a line, e.g. "have chromium|chromium chromium-driver".
DEPS=(
  "have_pg_server|postgresql"
  "have redis-server && have redis-cli|redis-server"
  "have_tesseract_langs|tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng"
  "test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf|fonts-dejavu-core"
  "have_venv_support|python3-venv"
  "test -x /usr/bin/chromium|chromium"
  "have curl && have jq|curl jq"   # docs/quickstart.md's commands, run as written by tests/api/test_quickstart.py
)

# Prints the packages of every need whose check fails.
missing_packages() {
  local dep
  for dep in "${DEPS[@]}"; do
    eval "${dep%%|*}" || echo "${dep#*|}"
  done
}

read -ra missing <<<"$(missing_packages | tr '\n' ' ')"
if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: all present"
  exit 0
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif have sudo && sudo -n true 2>/dev/null; then
  sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  echo "system-deps: missing system packages: ${missing[*]}" >&2
  echo "system-deps: not root and no passwordless sudo; as root, run:" >&2
  echo "    $cmd" >&2
  exit 1
fi

echo "system-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

# Make sure the packages really provided what was checked for.
still=$(missing_packages | tr '\n' ' ')
if [ -n "${still// /}" ]; then
  echo "system-deps: still missing after install: $still" >&2
  exit 1
fi
