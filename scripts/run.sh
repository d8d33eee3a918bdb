#!/usr/bin/env bash
# What `make run` runs: a local development server with the embedded defaults
# (SQLite file, local-memory cache, eager Celery tasks, local media, sandbox PSP).
# Works from a fresh clone: creates .venv and installs requirements.txt when
# needed, migrates, collects static files, creates a demo admin login and two
# demo API keys ONCE (kept in .run/credentials, reprinted on every run), prints
# them with working curl examples, then serves on 127.0.0.1:${PORT:-8000}.
# Any variable already set in the environment or in .env wins over the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Virtualenv and runtime requirements ------------------------------------
source scripts/python.sh
if ! kob_venv_current; then
  py=$(kob_python || true)
  if [ -z "$py" ]; then
    echo "run: Python 3.11 is required (Debian 12: apt-get install python3 python3-venv)." >&2
    exit 1
  fi
  if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "run: installing python3-venv"
      DEBIAN_FRONTEND=noninteractive apt-get update
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
    else
      echo "run: Python's venv module is missing; as root, run:" >&2
      echo "    apt-get update && apt-get install -y --no-install-recommends python3-venv" >&2
      exit 1
    fi
  fi
  kob_venv
fi

# Same stamp trick as scripts/test.sh: reinstall only when the pins changed.
# A venv that test.sh filled (runtime + dev pins, matching stamp) already has
# everything the server needs.
runtime_hash=$(sha256sum requirements.txt | cut -d' ' -f1)
dev_hash=$(kob_dev_requirements_hash)
if [ "$(cat .venv/.runtime-requirements.sha256 2>/dev/null || true)" != "$runtime_hash" ] &&
   [ "$(cat .venv/.requirements.sha256 2>/dev/null || true)" != "$dev_hash" ]; then
  echo "run: installing requirements.txt into .venv (first run: about a minute)"
  .venv/bin/python -m pip install -r requirements.txt
  echo "$runtime_hash" >.venv/.runtime-requirements.sha256   # only after a successful install
fi

# --- Environment: the environment wins, then .env, then the embedded defaults --
# .env is read with django-environ's own parser (the one settings.py uses), so
# its values are seen here exactly as the application will see them.
if [ -f .env ]; then
  eval "$(.venv/bin/python - <<'PY'
import os, re, shlex
import environ
before = set(os.environ)
environ.Env.read_env(".env", overwrite=False)
for name, value in os.environ.items():
    if name not in before and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        print(f"export {name}={shlex.quote(value)}")
PY
)"
fi

mkdir -p .run
chmod 700 .run

# A random secret key per checkout, kept so admin sessions survive restarts.
if [ ! -s .run/secret_key ]; then
  (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' >.run/secret_key)
fi

# The audit checkpoints' Ed25519 signing key, made once per checkout (like the
# demo credentials); the signed checkpoints go to .run/audit-checkpoints.
if [ ! -s .run/audit_signing_key ]; then
  (umask 077; .venv/bin/python -c 'import base64
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
raw = Ed25519PrivateKey.generate().private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption())
print(base64.b64encode(raw).decode())' >.run/audit_signing_key)
fi

DEV_WEBHOOK_SECRET="whsec_a29iYXRlbGEtZGV2LW9ubHktd2ViaG9vay1zZWNyZXQtZG8tbm90LXVzZQ=="  # "kobatela-dev-only-webhook-secret-do-not-use"

: "${DJANGO_ENV:=development}"
: "${DJANGO_DEBUG:=true}"
: "${DJANGO_SECURE_SSL_REDIRECT:=false}"
: "${DJANGO_SECRET_KEY:=$(cat .run/secret_key)}"
: "${CELERY_TASK_ALWAYS_EAGER:=true}"
: "${MEDIA_STORAGE:=local}"
: "${PSP_PROVIDER:=sandbox}"
: "${PSP_WEBHOOK_SECRET:=$DEV_WEBHOOK_SECRET}"
: "${PORT:=8000}"
[ -n "${AUDIT_SIGNING_KEY:-}" ] || : "${AUDIT_SIGNING_KEY_FILE:=$PWD/.run/audit_signing_key}"
: "${AUDIT_CHECKPOINT_DIR:=$PWD/.run/audit-checkpoints}"
# The demo pays the providers it creates at once; production keeps new payees unverified.
: "${PAYOUT_STATUS_DEFAULT:=verified}"
# REDIS_URL and DATABASE_URL stay unset unless you set them: local-memory
# cache and the SQLite file db.sqlite3.
export DJANGO_ENV DJANGO_DEBUG DJANGO_SECURE_SSL_REDIRECT DJANGO_SECRET_KEY \
  CELERY_TASK_ALWAYS_EAGER MEDIA_STORAGE PSP_PROVIDER PSP_WEBHOOK_SECRET PORT AUDIT_CHECKPOINT_DIR \
  PAYOUT_STATUS_DEFAULT
[ -z "${AUDIT_SIGNING_KEY_FILE:-}" ] || export AUDIT_SIGNING_KEY_FILE
export PYTHONUNBUFFERED=1

if [ "$DJANGO_ENV" != "development" ]; then
  echo "run: warning: DJANGO_ENV=$DJANGO_ENV (from your environment or .env); \`make run\` is meant for development." >&2
fi

manage() { .venv/bin/python manage.py "$@"; }

manage migrate --noinput
manage collectstatic --noinput -v 0

# --- Demo credentials: created once, checked against the database, reused ----
ADMIN_EMAIL=admin@kobatela.local
SENDER_EMAIL=sender@kobatela.local
DEMO_KEY_NAME="make run demo key"
ADMIN_PASSWORD="" ADMIN_KEY="" SENDER_KEY=""
if [ -f .run/credentials ]; then
  # shellcheck disable=SC1091
  source .run/credentials   # written below with printf %q
fi
[ -n "$ADMIN_PASSWORD" ] || ADMIN_PASSWORD=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(18))')

# Makes sure the admin-site login works with ADMIN_PASSWORD, and reports which
# stored keys are still valid in this database (a new database, a revoked or
# lost key → a new key; older demo keys of that account are revoked first).
check_output=$(
  RUN_ADMIN_EMAIL="$ADMIN_EMAIL" RUN_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
  RUN_SENDER_EMAIL="$SENDER_EMAIL" RUN_KEY_NAME="$DEMO_KEY_NAME" \
  RUN_ADMIN_KEY="$ADMIN_KEY" RUN_SENDER_KEY="$SENDER_KEY" \
  manage shell -c "$(cat <<'PY'
import os
from django.utils import timezone
from kobatela.accounts import keys, services
from kobatela.accounts.models import ApiKey, User

actor = "system:make-run"
email, password = os.environ["RUN_ADMIN_EMAIL"], os.environ["RUN_ADMIN_PASSWORD"]
admin = User.objects.filter(email=email).first()
if admin is None:
    admin = services.user_create(actor=actor, email=email, full_name="Demo Admin", kind=User.Kind.COMPANY)
changed = not (admin.is_staff and admin.is_superuser and admin.is_active)
admin.is_staff = admin.is_superuser = admin.is_active = True
if not admin.check_password(password):
    admin.set_password(password)
    changed = True
if changed:
    admin.save()


def key_ok(plaintext, scope):
    prefix = keys.parse_prefix(plaintext or "")
    row = ApiKey.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
    return bool(
        row and keys.matches(plaintext, row.key_hash) and row.revoked_at is None
        and (row.expires_at is None or row.expires_at > timezone.now())
        and scope in row.scopes and row.user.is_active
    )


for label, owner, scope in (("admin", email, "admin"), ("sender", os.environ["RUN_SENDER_EMAIL"], "sender")):
    if key_ok(os.environ.get(f"RUN_{label.upper()}_KEY"), scope):
        print(f"{label}=ok")
        continue
    stale = ApiKey.objects.filter(user__email=owner, name=os.environ["RUN_KEY_NAME"], revoked_at__isnull=True)
    for row in stale:
        services.api_key_revoke(actor=actor, api_key_id=row.pk)
    print(f"{label}=new")
PY
)"
)

if grep -qx 'admin=new' <<<"$check_output"; then
  ADMIN_KEY=$(manage create_api_key --email "$ADMIN_EMAIL" --scopes admin --name "$DEMO_KEY_NAME" \
    --full-name "Demo Admin" | tail -n1)
fi
if grep -qx 'sender=new' <<<"$check_output"; then
  SENDER_KEY=$(manage create_api_key --email "$SENDER_EMAIL" --scopes sender --name "$DEMO_KEY_NAME" \
    --full-name "Demo Sender" | tail -n1)
fi
case "$ADMIN_KEY$SENDER_KEY" in
  kbt_*kbt_*) ;;
  *) echo "run: could not create the demo API keys (output: $check_output)" >&2; exit 1 ;;
esac

(
  umask 077
  {
    echo "# Demo credentials created by scripts/run.sh (make run). Development only."
    printf 'ADMIN_EMAIL=%q\nADMIN_PASSWORD=%q\nADMIN_KEY=%q\nSENDER_KEY=%q\n' \
      "$ADMIN_EMAIL" "$ADMIN_PASSWORD" "$ADMIN_KEY" "$SENDER_KEY"
  } >.run/credentials.tmp
  mv .run/credentials.tmp .run/credentials
)

# Seal what the steps above audited (and write the first signed checkpoint).
manage seal_audit_log >/dev/null || echo "run: warning: manage.py seal_audit_log failed" >&2

# --- Banner -------------------------------------------------------------------
# (URLs with passwords are never printed: only where things live.)
db_desc="SQLite file db.sqlite3"; [ -z "${DATABASE_URL:-}" ] || db_desc="DATABASE_URL"
cache_desc="local memory"; [ -z "${REDIS_URL:-}" ] || cache_desc="Redis (REDIS_URL)"
celery_desc="run eagerly in-process"
case "$CELERY_TASK_ALWAYS_EAGER" in
  true|True|TRUE|1|yes|on) ;;
  *) celery_desc="sent to CELERY_BROKER_URL (start a worker: .venv/bin/celery -A kobatela worker)" ;;
esac
base="http://127.0.0.1:$PORT"
admin_path="/${ADMIN_URL_PATH:-admin/}"
admin_path="${admin_path//\/\//\/}"
cat <<EOF

================================================================================
 Kobatela development server  (DJANGO_ENV=$DJANGO_ENV, DEBUG=$DJANGO_DEBUG)
================================================================================
 API docs (Swagger) : $base/api/v1/docs/
 OpenAPI schema     : $base/api/v1/schema/
 Readiness          : $base/health/ready
 Admin site         : $base$admin_path
   login            : $ADMIN_EMAIL
   password         : $ADMIN_PASSWORD

 API keys (Authorization: Bearer <key>):
   admin  : $ADMIN_KEY
   sender : $SENDER_KEY

 PSP webhook secret (dev only): $PSP_WEBHOOK_SECRET
 Database: $db_desc   Cache: $cache_desc   Celery tasks: $celery_desc
 Credentials are kept in .run/credentials and reused on the next run.
 Audit log: no beat here; seal it and write a signed checkpoint (.run/audit-checkpoints)
   with .venv/bin/python manage.py seal_audit_log, then verify_audit_chain.

 Try:
   curl -s -H "Authorization: Bearer $ADMIN_KEY" $base/health
   curl -s -X POST $base/api/v1/users -H "Authorization: Bearer $ADMIN_KEY" -H "Content-Type: application/json" -d "{\"email\": \"client-\$(date +%s)@example.com\", \"full_name\": \"Demo Client\", \"kind\": \"company\"}"
================================================================================

EOF
if ! command -v tesseract >/dev/null 2>&1; then
  echo " note: tesseract is not installed, so proofs say ocr_status: DISABLED" \
    "(apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng)."
  echo
fi

exec .venv/bin/python manage.py runserver "127.0.0.1:$PORT"
