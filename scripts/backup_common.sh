# Helpers shared by scripts/backup.sh and scripts/restore.sh (sourced, not run).

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}

pg_tool() {  # the path of a PostgreSQL client program: PG_BIN, PATH, then the newest Debian install
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN/$1"; return; fi
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  echo "$d/$1"
}

seconds_since() {  # seconds (2 decimals) since a `date +%s%N` stamp
  local ms=$(( ($(date +%s%N) - $1) / 1000000 ))
  printf '%d.%02d' $((ms / 1000)) $(((ms % 1000) / 10))
}
