# Throwaway PostgreSQL + Redis for tests and benchmarks. Source it, then:
#   services_start   # starts both on free loopback ports, exports DATABASE_URL
#                    # (application role), DATABASE_OWNER_URL (migrations),
#                    # DATABASE_SUPERUSER_URL, REDIS_URL, CELERY_BROKER_URL,
#                    # KOBATELA_SERVICES_DIR
#   services_stop    # stops both, deletes everything; safe to call twice
# Works with or without `set -euo pipefail` in the caller: errors are handled
# explicitly and reported through the return code.
# Tunables: KOBATELA_PG_BIN (PostgreSQL bin dir), KOBATELA_SERVICES_TIMEOUT (s).

# The newest /usr/lib/postgresql/<v>/bin holding initdb (Debian keeps it off PATH).
_kob_pg_bin() {
  if [ -n "${KOBATELA_PG_BIN:-}" ]; then echo "$KOBATELA_PG_BIN"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1) || true
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  d=$(command -v initdb) && dirname "$d"
}

# PostgreSQL refuses to run as root, so as root run its tools as `postgres`.
# `cd /` because postgres may not be allowed into the caller's directory.
_kob_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# Two distinct free ports: bind both to port 0 at once so they cannot collide.
_kob_free_ports() {
  python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
for s in ss: s.close()'
}

_kob_fail() {
  local dir=${KOBATELA_SERVICES_DIR:-}
  echo "services_start: $*" >&2
  local log
  for log in "$dir/postgres.log" "$dir/redis.log"; do
    if [ -s "$log" ]; then
      echo "----- $log -----" >&2
      tail -n 50 "$log" >&2
    fi
  done
  services_stop
  return 1
}

services_start() {
  if [ -n "${KOBATELA_SERVICES_DIR:-}" ] && [ -d "$KOBATELA_SERVICES_DIR" ]; then
    echo "services_start: already running in $KOBATELA_SERVICES_DIR" >&2
    return 1
  fi
  local pg_bin ports pg_port redis_port dir timeout i
  timeout=${KOBATELA_SERVICES_TIMEOUT:-60}
  pg_bin=$(_kob_pg_bin) || { echo "services_start: PostgreSQL binaries not found (run scripts/system-deps.sh)" >&2; return 1; }
  ports=$(_kob_free_ports) || { echo "services_start: could not pick free ports" >&2; return 1; }
  read -r pg_port redis_port <<<"$ports"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/kobatela-services.XXXXXX") || return 1
  # Exported now so that services_stop can clean up even if we fail below.
  export KOBATELA_SERVICES_DIR=$dir
  _KOB_PG_BIN=$pg_bin
  _KOB_REDIS_PORT=$redis_port

  # PostgreSQL. The temp dir belongs to postgres when we are root: initdb
  # creates the data dir in it and the server puts its unix socket there.
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir" || { _kob_fail "cannot chown $dir to postgres"; return 1; }
    _kob_as_pg test -w "$dir" || { _kob_fail "user postgres cannot write $dir (is ${TMPDIR:-/tmp} traversable?)"; return 1; }
  fi
  # UTF8 + C.UTF-8 so that non-ASCII text (French names) sorts/upper()s sanely.
  _kob_as_pg "$pg_bin/initdb" -D "$dir/pgdata" -U postgres -A trust -E UTF8 \
      --locale=C.UTF-8 --no-sync --no-instructions >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; _kob_fail "initdb failed"; return 1; }
  # TCP on 127.0.0.1 only, trusted; no other client is accepted.
  echo "host all all 127.0.0.1/32 trust" >"$dir/pgdata/pg_hba.conf"
  # Test speed over durability: the cluster is thrown away after the run.
  cat >>"$dir/pgdata/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 128MB
EOF
  _kob_as_pg "$pg_bin/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t "$timeout" start >/dev/null \
    || { _kob_fail "PostgreSQL did not start"; return 1; }

  # Redis: no persistence at all; daemonized so it never holds our stdout open.
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    || { _kob_fail "redis-server did not start"; return 1; }

  # Wait until both actually answer.
  for ((i = 0; i < timeout * 5; i++)); do
    if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -d postgres -U postgres \
        && [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; then
      break
    fi
    sleep 0.2
  done
  if ((i >= timeout * 5)); then
    _kob_fail "PostgreSQL or Redis did not answer within ${timeout}s"; return 1
  fi

  # Least-privilege roles, as in production (README "Operations"): the owner
  # migrates (and, here, may create the test databases); the application runs
  # as kobatela_app, which may not change audit or ledger rows.
  "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -v owner=kobatela_owner -v app=kobatela_app -v owner_password= -v app_password= -v db=kobatela \
      -f "$(dirname "${BASH_SOURCE[0]}")/db-roles.sql" >"$dir/roles.log" 2>&1 \
    || { cat "$dir/roles.log" >&2; _kob_fail "creating the database roles failed"; return 1; }

  # The application's role; the owner's for `manage.py migrate`; the superuser
  # for what only tests and drills do (tampering, ALTER SYSTEM).
  export DATABASE_URL="postgres://kobatela_app@127.0.0.1:$pg_port/kobatela"
  export DATABASE_OWNER_URL="postgres://kobatela_owner@127.0.0.1:$pg_port/kobatela"
  export DATABASE_SUPERUSER_URL="postgres://postgres@127.0.0.1:$pg_port/kobatela"
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
  export CELERY_BROKER_URL="redis://127.0.0.1:$redis_port/1"
  echo "services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port ($dir)"
}

services_stop() {
  local dir=${KOBATELA_SERVICES_DIR:-} pid i
  if [ -z "$dir" ]; then return 0; fi   # never started, or already stopped
  if [ -f "$dir/pgdata/postmaster.pid" ]; then
    _kob_as_pg "${_KOB_PG_BIN:-$(_kob_pg_bin)}/pg_ctl" -D "$dir/pgdata" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  # Redis: SIGTERM via its pidfile (exits at once, nothing to save); if the
  # pidfile was never written, ask over the socket.
  pid=$(cat "$dir/redis.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  elif [ -n "${_KOB_REDIS_PORT:-}" ]; then
    redis-cli -h 127.0.0.1 -p "$_KOB_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  rm -rf -- "$dir" || true
  unset KOBATELA_SERVICES_DIR DATABASE_URL DATABASE_OWNER_URL DATABASE_SUPERUSER_URL REDIS_URL CELERY_BROKER_URL _KOB_PG_BIN _KOB_REDIS_PORT
  return 0
}
