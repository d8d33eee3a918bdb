#!/usr/bin/env bash
# `make bench`: the deposit endpoint under load, against the same SQL run bare
# by pgbench. See bench/README.md. From a fresh clone: installs what is missing
# (system packages, .venv), starts a throwaway PostgreSQL + Redis, seeds, runs
# wrk against gunicorn, then pgbench, prints the table, keeps the raw outputs in
# bench/results/<timestamp>/. Exits non-zero only when the run itself failed
# (a missing tool, a non-2xx response, a pgbench error), never for a missed target.
# Tunables: BENCH_SECONDS (20), BENCH_WARMUP_SECONDS (5), BENCH_ESCROWS (64),
# BENCH_WORKERS (one per core: measured best on a host that also runs PostgreSQL and wrk, bench/README.md),
# BENCH_INSTRUCTIONS=1 (also count the instructions of one deposit and one read with callgrind: ~5 min more).
# BENCH_SHARES=1 (also price the metrics middleware, the rate limit's Redis call and the response body as
# shares of a deposit's CPU: bench/shares.py, about two minutes more).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

DURATION=${BENCH_SECONDS:-20}
WARMUP=${BENCH_WARMUP_SECONDS:-5}
ESCROWS=${BENCH_ESCROWS:-64}
CONNECTIONS=16
THREADS=2
CORES=$(nproc)
WORKERS=${BENCH_WORKERS:-$CORES}
INSTRUCTIONS=${BENCH_INSTRUCTIONS:-0}
SHARES=${BENCH_SHARES:-0}

log() { echo "bench: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
have_pgbench() { ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || have pgbench; }

# --- System packages: what the app needs (scripts/system-deps.sh), then ours --
scripts/system-deps.sh
BENCH_DEPS=(
  "have wrk|wrk"
  "have_pgbench|postgresql-contrib"
  "have curl|curl"
)
[ "$INSTRUCTIONS" = 1 ] && BENCH_DEPS+=("have valgrind|valgrind")
missing=()
for dep in "${BENCH_DEPS[@]}"; do
  eval "${dep%%|*}" || missing+=("${dep#*|}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif have sudo && sudo -n true 2>/dev/null; then
    sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive)
  else
    log "missing system packages: ${missing[*]}; as root, run:"
    log "    apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  # Another apt run (e.g. a parallel setup) holds the lock: wait for it.
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
  for dep in "${BENCH_DEPS[@]}"; do
    eval "${dep%%|*}" || { log "still missing after install: ${dep#*|}"; exit 1; }
  done
fi

# --- Virtualenv (the same as scripts/test.sh's) -------------------------------
source scripts/python.sh
kob_venv_dev

# --- Results directory --------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=bench/results/$STAMP
mkdir -p "$RES"
log "raw outputs in $RES"
# Other work on the machine skews every figure: note it, and warn.
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
ps -eo pid,pcpu,etime,args --sort=-pcpu | head -n 12 >"$RES/ps-before.txt" || true
if awk -v l="$LOAD_BEFORE" -v c="$CORES" 'BEGIN { exit !(l > c / 4) }'; then
  log "WARNING: load average $LOAD_BEFORE on $CORES cores before the run: other work will skew the figures (see $RES/ps-before.txt)"
fi

# --- Services and cleanup -----------------------------------------------------
GUNICORN_PID=
stop_gunicorn() {
  if [ -n "$GUNICORN_PID" ] && kill -0 "$GUNICORN_PID" 2>/dev/null; then
    kill -TERM "$GUNICORN_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$GUNICORN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GUNICORN_PID" 2>/dev/null || true
    wait "$GUNICORN_PID" 2>/dev/null || true
  fi
  GUNICORN_PID=
}
source scripts/services.sh
SAMPLER_PID=
cleanup() { if [ -n "$SAMPLER_PID" ]; then touch "$RES/.stop-sampling"; fi; stop_gunicorn; services_stop; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
services_start
PG_BIN=$(_kob_pg_bin)
PGBENCH=$PG_BIN/pgbench
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench)

# --- The app's environment: a production start ---------------------------------
export DJANGO_SETTINGS_MODULE=kobatela.settings
export DJANGO_ENV=production
DJANGO_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(64))')
export DJANGO_SECRET_KEY
export DJANGO_DEBUG=false
export DJANGO_SECURE_SSL_REDIRECT=false
export PSP_WEBHOOK_SECRET=whsec_bench_$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export DJANGO_ALLOWED_HOSTS=127.0.0.1
export LOG_LEVEL=WARNING
export CELERY_TASK_ALWAYS_EAGER=true
# One API key drives every request: a per-key limit that never answers 429, still
# counted in Redis on every request as in production (its cost is in the figures).
export RATE_LIMIT_BURST_PER_SECOND=1000000 RATE_LIMIT_PER_MINUTE=60000000
# No access log line per request, as in the figures before #18 (a deployment ships
# them to its log pipeline; the app's own logs stay at WARNING).
export GUNICORN_ACCESS_LOG=
export REDIS_URL CELERY_BROKER_URL DATABASE_URL

log "migrating"
.venv/bin/python manage.py migrate --noinput >"$RES/migrate.txt" 2>&1 || { cat "$RES/migrate.txt" >&2; exit 1; }

log "seeding: one sender API key, $ESCROWS DRAFT escrows"
.venv/bin/python manage.py create_api_key --email bench-sender@example.com --scopes sender --name bench \
  >"$RES/api_key.txt" 2>&1 || { cat "$RES/api_key.txt" >&2; exit 1; }
API_KEY=$(tail -n 1 "$RES/api_key.txt")
.venv/bin/python bench/seed.py bench-sender@example.com "$ESCROWS" >"$RES/seed.txt" 2>&1 \
  || { cat "$RES/seed.txt" >&2; exit 1; }
CLIENT_ID=$(awk '$1 == "CLIENT" {print $2}' "$RES/seed.txt")
ESCROW_IDS=$(awk '$1 == "ESCROWS" {$1 = ""; print substr($0, 2)}' "$RES/seed.txt")
read -ra ids <<<"$ESCROW_IDS"
EID_LO=${ids[0]}
EID_HI=${ids[${#ids[@]} - 1]}
if [ ${#ids[@]} -ne "$ESCROWS" ] || [ $((EID_HI - EID_LO + 1)) -ne "$ESCROWS" ]; then
  log "seeded escrow ids are not $ESCROWS contiguous ids: $ESCROW_IDS"; exit 1
fi

log "capturing the SQL of one deposit (bench/capture_deposit_sql.py)"
.venv/bin/python bench/capture_deposit_sql.py "$API_KEY" "$EID_LO" --check bench/deposit.sql \
  >"$RES/capture_deposit_sql.txt" 2>"$RES/capture_deposit_sql.stderr" \
  || { cat "$RES/capture_deposit_sql.stderr" >&2; exit 1; }
SHAPE=$(awk '/^shape: / {print $2}' "$RES/capture_deposit_sql.txt")
[ "$SHAPE" = MATCH ] || log "WARNING: bench/deposit.sql no longer matches the app's transaction (see $RES/capture_deposit_sql.txt)"

# --- The floor: the same SQL transaction, bare, with pgbench ------------------------
# Measured twice, right before and right after the HTTP deposits, and the ratio
# uses the mean: this VM's speed drifts by up to a third within minutes, more for
# pgbench's many small round trips than for the app, and a floor measured once,
# a minute away from the deposits, moved the ratio with it (bench/README.md,
# "Fifth pass"). Bracketing the deposits cancels a steady drift, and two floors
# that disagree show an unsteady one. gunicorn is up but idle while pgbench runs.
pgbench_run() {  # <seconds> <output> [extra args]
  local secs=$1 out=$2; shift 2
  "$PGBENCH" -n -M prepared -c"$CONNECTIONS" -j"$THREADS" -T "$secs" -f bench/deposit.sql \
    -D client="$CLIENT_ID" -D eid_lo="$EID_LO" -D eid_hi="$EID_HI" "$@" "$DATABASE_URL" >"$out" 2>&1 \
    || { cat "$out" >&2; log "pgbench failed"; exit 1; }
  if ! grep -q 'number of failed transactions: 0 ' "$out"; then cat "$out" >&2; log "pgbench had failed transactions"; exit 1; fi
}

# --- 1. The HTTP endpoint under gunicorn + wrk ---------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "gunicorn kobatela.wsgi: $WORKERS sync workers on 127.0.0.1:$PORT"
.venv/bin/gunicorn kobatela.wsgi --workers "$WORKERS" --worker-class sync --bind "127.0.0.1:$PORT" \
  --log-level warning --error-logfile "$RES/gunicorn.log" &
GUNICORN_PID=$!
for i in $(seq 1 300); do
  curl -sf -o /dev/null -H 'Host: 127.0.0.1' "http://127.0.0.1:$PORT/health/live" && break
  kill -0 "$GUNICORN_PID" 2>/dev/null || { log "gunicorn died"; cat "$RES/gunicorn.log" >&2; exit 1; }
  sleep 0.2
done
[ "$i" -lt 300 ] || { log "gunicorn did not answer /health/live"; cat "$RES/gunicorn.log" >&2; exit 1; }

export BENCH_API_KEY=$API_KEY BENCH_ESCROW_IDS=$ESCROW_IDS BENCH_THREADS=$THREADS
run_wrk() {  # <seconds> <nonce> <output>
  BENCH_NONCE=$2 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1"s --latency -s bench/deposit.lua \
    "http://127.0.0.1:$PORT" >"$3" 2>&1 || { cat "$3" >&2; log "wrk failed"; exit 1; }
}
check_wrk() {  # <output>: every response 2xx, no socket error
  local line non2xx sock
  line=$(grep '^bench-statuses:' "$1" || true)
  non2xx=$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<<"$line")
  sock=$(grep -o 'Socket errors:.*' "$1" || true)
  if [ -z "$line" ] || [ "${non2xx:-1}" -ne 0 ] || [ -n "$sock" ]; then
    cat "$1" >&2
    log "FAILED RUN: non-2xx responses or socket errors in $1 (${line:-no status line}; ${sock:-no socket errors})"
    exit 1
  fi
}
log "pgbench warm-up: ${WARMUP}s"
pgbench_run "$WARMUP" "$RES/pgbench-warmup.txt"
log "pgbench, before the deposits: ${DURATION}s, $CONNECTIONS clients, $THREADS threads, -M prepared"
pgbench_run "$DURATION" "$RES/pgbench-before.txt"
log "warm-up: ${WARMUP}s"
run_wrk "$WARMUP" "warm-$STAMP" "$RES/wrk-warmup.txt"
check_wrk "$RES/wrk-warmup.txt"
# pg_locks sampled while the deposits run: any advisory lock a web worker waits
# for (there should be none: the audit append takes no lock) is counted. One psql
# session takes every sample: a new process and backend five times a second
# would tax the machine being measured.
sample_locks() {
  while [ ! -e "$RES/.stop-sampling" ]; do
    echo "SELECT count(*) FILTER (WHERE NOT l.granted),
        count(*) FILTER (WHERE NOT l.granted AND l.locktype = 'advisory'), count(*)
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE a.usename = 'kobatela_app' AND a.backend_type = 'client backend';"
    sleep 0.2
  done | "$PG_BIN/psql" -At "$DATABASE_SUPERUSER_URL" >"$RES/pg_locks.txt" 2>/dev/null || true
}
log "wrk: ${DURATION}s, $THREADS threads, $CONNECTIONS connections (pg_locks sampled every 0.2 s)"
sample_locks &
SAMPLER_PID=$!
run_wrk "$DURATION" "run-$STAMP" "$RES/wrk.txt"
touch "$RES/.stop-sampling"  # the loop ends, psql reads its end of input, writes out and exits
wait "$SAMPLER_PID" 2>/dev/null || true
rm -f "$RES/.stop-sampling"
SAMPLER_PID=
check_wrk "$RES/wrk.txt"
log "pgbench, after the deposits: ${DURATION}s, $CONNECTIONS clients, $THREADS threads, -M prepared"
pgbench_run "$DURATION" "$RES/pgbench.txt" --log --log-prefix="$RES/pgbench_log"
log "wrk GET /escrows/{id} (audited read): ${DURATION}s, $THREADS threads, $CONNECTIONS connections"
BENCH_MODE=get run_wrk "$DURATION" "get-$STAMP" "$RES/wrk-get.txt"
check_wrk "$RES/wrk-get.txt"
stop_gunicorn

if [ "$INSTRUCTIONS" = 1 ]; then
  log "instructions per request (callgrind, bench/instructions.py): 4 counts"
  .venv/bin/python bench/instructions.py "$API_KEY" $ESCROW_IDS >"$RES/instructions.txt" 2>"$RES/instructions.stderr" \
    || { cat "$RES/instructions.stderr" >&2; log "instruction count failed"; exit 1; }
fi
if [ "$SHARES" = 1 ]; then
  log "shares of a deposit's CPU (bench/shares.py): the deposit with and without each removable step, interleaved"
  .venv/bin/python bench/shares.py "$API_KEY" $ESCROW_IDS >"$RES/shares.txt" 2>"$RES/shares.stderr" \
    || { cat "$RES/shares.stderr" >&2; log "shares failed"; exit 1; }
fi

# --- 2. The table --------------------------------------------------------------------
ps -eo pid,pcpu,etime,args --sort=-pcpu | head -n 12 >"$RES/ps-after.txt" || true
cat >"$RES/meta.env" <<EOF
LOAD_BEFORE=$LOAD_BEFORE
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
STAMP=$STAMP
SECONDS=$DURATION
CONNECTIONS=$CONNECTIONS
CORES=$CORES
WORKERS=$WORKERS
ESCROWS=$ESCROWS
SHAPE=$SHAPE
GIT_HEAD=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$(git status --porcelain 2>/dev/null | wc -l)
PYTHON=$(.venv/bin/python -c 'import platform; print(platform.python_version())') $(kob_venv_base)
EOF
echo
python3 bench/report.py "$RES"
