#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an EMPTY database and storage,
# then (with --verify) prove it: `manage.py reconcile` and `verify_audit_chain`.
#
#   scripts/restore.sh [--help] [--verify] BACKUP_DIR
#
# Environment: DATABASE_URL (the target database; it must exist and be empty —
# create it with `createdb`), the application's storage settings (MEDIA_ROOT
# or AWS_*), PYTHON and PG_BIN as for backup.sh. Checks every file against
# SHA256SUMS before touching anything. Prints the seconds each step took.
# Never run it against the live database: it refuses a database that already
# has tables.
set -euo pipefail
cd "$(dirname "$0")/.."

verify=0
case "${1:-}" in
  --help|-h) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --verify) verify=1; shift ;;
esac
BACKUP=${1:?usage: scripts/restore.sh [--verify] BACKUP_DIR}
: "${DATABASE_URL:?DATABASE_URL must name the (empty) database to restore into}"
# shellcheck source=scripts/backup_common.sh
source scripts/backup_common.sh

# --- artefacts (the same names as backup.sh's ARTEFACTS) -------------------------
restore_checkpoint() {  # the backup's signed checkpoint must verify with the configured public keys
  "$PYTHON" manage.py audit_checkpoint --verify "$BACKUP/audit-checkpoint.json" >/dev/null
}

restore_database() {
  local tables url=${DATABASE_OWNER_URL:-$DATABASE_URL}   # the tables belong to the owner role
  tables=$("$(pg_tool psql)" -At -d "$url" -c \
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
  if [ "$tables" != "0" ]; then
    echo "restore: the target database has $tables tables; restore only into an empty database" >&2
    return 1
  fi
  "$(pg_tool pg_restore)" --exit-on-error --no-owner --no-privileges --single-transaction \
    --dbname "$url" "$BACKUP/database.dump"
  # The application role's grants (left out of the dump), and any migration newer than the backup.
  "$PYTHON" manage.py migrate --noinput >/dev/null
}

restore_storage() {
  "$PYTHON" manage.py import_storage --from "$BACKUP/storage" >/dev/null
}

# --- run -------------------------------------------------------------------------
[ -f "$BACKUP/MANIFEST" ] || { echo "restore: $BACKUP is not a backup (no MANIFEST)" >&2; exit 1; }
(cd "$BACKUP" && sha256sum --quiet --check SHA256SUMS) || { echo "restore: checksums do not match" >&2; exit 1; }
read -ra ARTEFACTS <<<"$(sed -n 's/^artefacts //p' "$BACKUP/MANIFEST")"

started=$(date +%s%N)
for artefact in "${ARTEFACTS[@]}"; do
  t0=$(date +%s%N)
  "restore_$artefact"
  echo "restore: $artefact in $(seconds_since "$t0")s"
done
if [ "$verify" = 1 ]; then
  t0=$(date +%s%N)
  "$PYTHON" manage.py reconcile
  if [ -f "$BACKUP/audit-checkpoint.json" ]; then
    "$PYTHON" manage.py verify_audit_chain --checkpoint "$BACKUP/audit-checkpoint.json"
  else
    "$PYTHON" manage.py verify_audit_chain
  fi
  echo "restore: verified (reconcile, verify_audit_chain) in $(seconds_since "$t0")s"
fi
echo "restore: total $(seconds_since "$started")s"
