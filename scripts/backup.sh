#!/usr/bin/env bash
# Back up Kobatela: the latest signed audit checkpoint (sealed just before),
# the PostgreSQL database (pg_dump, custom format) and every object of the
# file storage (proof files; local MEDIA_ROOT or S3), with a manifest of
# SHA-256 sums. Restore with scripts/restore.sh.
#
#   scripts/backup.sh [--help] [DEST]      # DEST defaults to ./backups
#
# Environment: DATABASE_URL (required; DATABASE_OWNER_URL, when set, is used
# for pg_dump) and the application's own settings (MEDIA_STORAGE, MEDIA_ROOT or
# AWS_*, AUDIT_*), read by `manage.py export_storage` and the audit commands.
# PYTHON (default .venv/bin/python, else python3) and PG_BIN (folder of
# pg_dump; default: PATH, then the newest /usr/lib/postgresql/*/bin).
# Prints the backup folder on its last line. Exit non-zero on any failure,
# leaving no half-made backup behind.
#
# What goes in is the ARTEFACTS list below: each name N has a function
# backup_N (writes into $OUT) and a matching restore_N in scripts/restore.sh.
# Adding an artefact is one function and one word in that list here and in
# restore.sh. The checkpoint comes first: every row it covers is in the dump
# taken after it, so the restore can prove the restored chain against it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
: "${DATABASE_URL:?DATABASE_URL must name the database to back up}"
DEST=${1:-backups}
# shellcheck source=scripts/backup_common.sh
source scripts/backup_common.sh

# --- artefacts -------------------------------------------------------------------
ARTEFACTS=(checkpoint database storage)

backup_checkpoint() {
  "$PYTHON" manage.py seal_audit_log >/dev/null
  "$PYTHON" manage.py audit_checkpoint --latest >"$OUT/audit-checkpoint.json"
}

backup_database() {
  "$(pg_tool pg_dump)" --format=custom --compress=6 \
    --file "$OUT/database.dump" --dbname "${DATABASE_OWNER_URL:-$DATABASE_URL}"
}

backup_storage() {
  "$PYTHON" manage.py export_storage --to "$OUT/storage" >/dev/null
}

# --- run -------------------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$DEST"
OUT=$(mktemp -d "$DEST/.kobatela-$stamp.XXXXXX")
trap 'rm -rf -- "$OUT"' EXIT
started=$(date +%s%N)
{
  echo "kobatela backup $stamp"
  echo "started_at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "artefacts ${ARTEFACTS[*]}"
} >"$OUT/MANIFEST"
for artefact in "${ARTEFACTS[@]}"; do
  t0=$(date +%s%N)
  "backup_$artefact"
  echo "seconds_$artefact $(seconds_since "$t0")" >>"$OUT/MANIFEST"
done
echo "seconds_total $(seconds_since "$started")" >>"$OUT/MANIFEST"
(cd "$OUT" && find . -type f ! -name MANIFEST ! -name SHA256SUMS -print0 | sort -z | xargs -0 -r sha256sum) >"$OUT/SHA256SUMS"
final="$DEST/kobatela-$stamp"
mv "$OUT" "$final"
trap - EXIT
echo "$final"
