"""Kobatela settings: everything comes from the environment (django-environ).

Every variable is listed in ``.env.example`` with its safe default. ``DJANGO_ENV``
says what kind of start this is: ``production`` (the default, so a forgotten
variable fails closed), ``development`` (``make run``) or ``test``. The system
checks in ``kobatela.core.checks`` refuse a production start that is unsafe.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="production")
IS_PRODUCTION = DJANGO_ENV == "production"

# The value a production start refuses (see kobatela.core.checks).
INSECURE_SECRET_KEY = "insecure-development-key-change-me"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or INSECURE_SECRET_KEY
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "kobatela.core.admin_site.BackOfficeAdminConfig",  # django.contrib.admin with the back office's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "kobatela.core",
    "kobatela.accounts",
    "kobatela.audit",
    "kobatela.events",
    "escrow",
    "proofs",
    "payments",
    "spend",
    "webhooks",
    "axes",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "kobatela.core.middleware.RequestIdMiddleware",
    "kobatela.core.middleware.BodySizeLimitMiddleware",
    "kobatela.core.middleware.ApiJsonErrorsMiddleware",  # JSON errors under /api/, DEBUG included
    "kobatela.core.outages.OutageMiddleware",  # a database or Redis outage in a view → 503, not 500
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "kobatela.urls"
WSGI_APPLICATION = "kobatela.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# Embedded default: an SQLite file. Production and tests: PostgreSQL (psycopg 3).
# An empty value counts as unset (a blank line in .env must not break the start).
DATABASES = {"default": env.db_url_config(env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False  # transactions belong to services
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with a liveness check read from the socket instead of a
    # "SELECT 1" per request (kobatela/core/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "kobatela.core.postgresql"
    # Persistent connections, checked before each request's first query: a
    # connection PostgreSQL closed (a restart) is replaced, not failed on.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    # A database that does not answer is a 503 within seconds, never a hung worker.
    _options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT_SECONDS", default=3))
    # Parameters travel apart from the SQL, and a statement a connection runs
    # again (the same text) is prepared once: PostgreSQL parses and plans it once
    # per connection (bench/README.md: its measured share). Behind a pooler in
    # transaction mode (PgBouncer < 1.21), set DATABASE_PREPARE_THRESHOLD= (empty).
    _options.setdefault("server_side_binding", env.bool("DATABASE_SERVER_SIDE_BINDING", default=True))
    _prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="2")
    _options.setdefault("prepare_threshold", int(_prepare_threshold) if _prepare_threshold else None)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Take SQLite's write lock at BEGIN so row locks and the audit chain stay
    # serialized in the embedded default (SQLite has no SELECT … FOR UPDATE).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
# Least-privilege roles (kobatela.core.roles, README "Operations"): DATABASE_URL
# is the application's role; DATABASE_OWNER_URL (same database, the tables'
# owner) is used by `manage.py migrate` only, which then grants the application
# role what it may do. Give DATABASE_OWNER_URL to the migrate job alone.
_owner_url = env.str("DATABASE_OWNER_URL", default="")
DATABASE_OWNER = ({k: v for k, v in env.db_url_config(_owner_url).items() if k in ("USER", "PASSWORD")}
                  if _owner_url else {})
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="") or DATABASES["default"].get("USER", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery -----------------------------------------------------
# Redis is optional on the request path: every Redis client (this cache, the
# Celery publisher, the AI breaker and daily cap) gives up within these
# seconds and its caller falls back — the API key's last use is written from
# the database, a task the broker did not take is left to the sweepers, the
# breaker and cap count in the process, readiness says "fail". Without them a
# frozen Redis held a sync worker 5 s per command (redis-py's default) and
# forever per publish (kombu's), and starved every other request.
REDIS_CONNECT_TIMEOUT_SECONDS = env.float("REDIS_CONNECT_TIMEOUT_SECONDS", default=0.25)
REDIS_TIMEOUT_SECONDS = env.float("REDIS_TIMEOUT_SECONDS", default=0.25)
# redis-py keyword arguments of every client made from REDIS_URL. No retry:
# redis-py already reconnects a connection Redis closed, and against a Redis
# that does not answer a retry only doubles the wait.
REDIS_CLIENT_OPTIONS = {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS}
REDIS_URL = env.str("REDIS_URL", default="")
# Per API key (docs/api.md "Limits"), counted in Redis (process memory without it): kobatela/core/throttling.py.
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATE_LIMIT_BURST_PER_SECOND = env.int("RATE_LIMIT_BURST_PER_SECOND", default=100)
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=6000)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": dict(REDIS_CLIENT_OPTIONS)}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is re-delivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Publishing (kombu's Redis transport) under the same timeouts, one attempt:
# enqueue_on_commit logs a refused message and the sweepers send it later.
# Beware: a message whose reply timed out may still have reached Redis (tasks are idempotent).
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT_SECONDS
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT_SECONDS,
                                   "socket_timeout": REDIS_TIMEOUT_SECONDS}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0, "interval_start": 0, "interval_step": 0, "interval_max": 0}
# A message a worker took and never acknowledged (acks_late: the worker died
# mid-task) goes back to its queue this long after it was taken, and the
# workers look for such messages every few seconds: a killed worker's payout
# is sent again within a minute. Longer than our tasks take (OCR of a long
# scan ~15 s, the AI call AI_TIMEOUT_SECONDS); one that outlives it is run
# twice, which every task survives (they claim their row first).
CELERY_BROKER_TRANSPORT_OPTIONS.update({
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=40),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
})
CELERY_TIMEZONE = "UTC"
# Worker and beat log through LOGGING below (JSON, masked, request and task
# ids), not through Celery's own formatter (kobatela.core.celery_process).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The one place that holds the beat schedule. Each periodic task takes a
# PostgreSQL advisory lock (kobatela.core.locks.periodic_job), so two beat
# instances never run the same job at once.
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "kobatela.core.tasks.heartbeat", "schedule": 30.0},
    "purge-idempotency-keys": {"task": "kobatela.core.tasks.purge_idempotency_keys", "schedule": 3600.0},
    "escrow-deadlines": {"task": "escrow.tasks.apply_deadlines", "schedule": 300.0},
    "escrow-inspections": {"task": "escrow.tasks.release_due_inspections", "schedule": 60.0},
    "refund-sweep": {"task": "escrow.tasks.sweep_refunds", "schedule": 120.0},
    "payout-sweep": {"task": "payments.tasks.sweep_payouts", "schedule": 60.0},
    "ocr-sweep": {"task": "proofs.tasks.sweep_ocr", "schedule": 300.0},
    "ai-sweep": {"task": "proofs.tasks.sweep_ai", "schedule": 120.0},
    "webhook-deliveries-sweep": {"task": "webhooks.tasks.sweep_deliveries", "schedule": 30.0},
    "expire-mandates": {"task": "spend.tasks.expire_mandates", "schedule": 300.0},
    "seal-audit-log": {"task": "kobatela.audit.tasks.seal_audit_log",
                       "schedule": env.float("AUDIT_SEAL_INTERVAL_SECONDS", default=5.0)},
}

# --- Internationalization -------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default="") or BASE_DIR / "media")
MEDIA_URL = "/media/"
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="local")
if MEDIA_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME", default=""),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# --- Audit chain checkpoints (kobatela.audit.checkpoints) ---------------------
# Ed25519 private key that signs the checkpoints: base64 of the 32-byte seed or
# PEM, in the variable or in a file (`manage.py audit_keygen` makes one). Never
# stored in the database. AUDIT_PUBLIC_KEYS: more public keys that verify
# (retired keys after a rotation), base64 or PEM, comma-separated.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
AUDIT_SIGNING_KEY_FILE = env.str("AUDIT_SIGNING_KEY_FILE", default="")
AUDIT_PUBLIC_KEYS = env.list("AUDIT_PUBLIC_KEYS", default=[])
# Where the signed checkpoints go, outside the database: "local" (a directory,
# AUDIT_CHECKPOINT_DIR) or "s3" (AUDIT_CHECKPOINT_BUCKET, with the AWS_* settings
# of the media storage; Object Lock for AUDIT_CHECKPOINT_OBJECT_LOCK_DAYS days
# when above 0 — the bucket must have Object Lock enabled).
AUDIT_CHECKPOINT_STORAGE = env.str("AUDIT_CHECKPOINT_STORAGE", default="local")
AUDIT_CHECKPOINT_DIR = Path(env.str("AUDIT_CHECKPOINT_DIR", default="") or BASE_DIR / "audit-checkpoints")
AUDIT_CHECKPOINT_OBJECT_LOCK_DAYS = env.int("AUDIT_CHECKPOINT_OBJECT_LOCK_DAYS", default=0)
if AUDIT_CHECKPOINT_STORAGE == "s3":
    _audit_checkpoint_storage = {
        "BACKEND": "kobatela.audit.checkpoints.CheckpointS3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AUDIT_CHECKPOINT_BUCKET", default=""),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            "file_overwrite": False,
        },
    }
else:
    _audit_checkpoint_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                 "OPTIONS": {"location": str(AUDIT_CHECKPOINT_DIR)}}

STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "audit_checkpoints": _audit_checkpoint_storage,
}

# --- Request limits --------------------------------------------------------
# JSON bodies above this size answer 413 (kobatela.core.middleware.BodySizeLimitMiddleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
PROOF_MAX_UPLOAD_MB = env.int("PROOF_MAX_UPLOAD_MB", default=20)
# A photo pays automatically only if taken no longer ago than the milestone's
# max_photo_age_hours, or this when the milestone sets none (proofs.photo_trust).
PROOF_PHOTO_MAX_AGE_HOURS = env.int("PROOF_PHOTO_MAX_AGE_HOURS", default=72)
# How far after the upload a capture time may be (camera clocks drift).
PROOF_PHOTO_CLOCK_SKEW_SECONDS = env.int("PROOF_PHOTO_CLOCK_SKEW_SECONDS", default=300)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads spool to a temp file

# --- Security ---------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]  # probes speak plain HTTP inside the cluster
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(env.str("DJANGO_HSTS_SECONDS", default="") or (0 if DEBUG or not IS_PRODUCTION else 31536000))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = IS_PRODUCTION and not DEBUG
CSRF_COOKIE_SECURE = IS_PRODUCTION and not DEBUG
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "kobatela.core.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ADMIN_URL_PATH = env.str("ADMIN_URL_PATH", default="admin/")

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["kobatela.accounts.authentication.ApiKeyAuthentication"],
    # Fail closed: a view that forgets to declare its scopes refuses everyone.
    "DEFAULT_PERMISSION_CLASSES": ["kobatela.accounts.permissions.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["kobatela.core.parsers.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "kobatela.core.pagination.CursorPagination",
    "DEFAULT_SCHEMA_CLASS": "kobatela.accounts.openapi.AutoSchema",
    # No DEFAULT_FILTER_BACKENDS: each viewset runs only the filter it declares (kobatela.core.viewsets).
    "EXCEPTION_HANDLER": "kobatela.core.exception_handler.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kobatela API",
    "DESCRIPTION": (
        "Escrow and conditional payments released against proof.\n\n"
        "The contract, in the project's words: [`docs/api.md`](docs/api.md) in the repository (conventions, "
        "errors and every `code`, idempotency, pagination, webhooks, events, limits, sandbox); from zero to a "
        "released escrow: [`docs/quickstart.md`](docs/quickstart.md). Every operation's summary and description "
        "below is its section of docs/api.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # The operators' plain views (/health/live, /health/ready, /metrics), described beside the API.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "kobatela.accounts.openapi.add_operator_endpoints"],
    "COMPONENT_SPLIT_REQUEST": True,
    # One component name per choice set (otherwise drf-spectacular warns of duplicates).
    "ENUM_NAME_OVERRIDES": {
        "ProofTypeEnum": "escrow.models.ProofType",
        "EscrowStatusEnum": "escrow.models.EscrowStatus",
        "PaymentStatusEnum": "payments.models.PaymentStatus",
        "ProofStatusEnum": "proofs.models.ProofStatus",
        "WebhookReceiptStatusEnum": ["processed", "failed", "ignored"],
        "UploadLinkStatusEnum": "proofs.models.UploadLinkStatus",
        "PayoutStatusEnum": "kobatela.accounts.models.PayoutStatus",
    },
    # Swagger UI served from our own static files (no CDN): works offline and under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

ALLOWED_CURRENCIES = [c.strip().upper() for c in env.list("ALLOWED_CURRENCIES", default=["USD", "EUR", "CDF", "XOF", "XAF"])]

# API keys: how long a verified key is cached (revocation also clears it at once
# on this cache; on another cache it takes effect within this many seconds), and
# how often last_used_at may be written per key.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=5)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60

# Idempotency keys are kept at least this long, then purged by a beat job.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# SQLite only (no advisory locks): a request still marked in progress after
# this long is considered dead and a retry with the same key may run again. On
# PostgreSQL the request's session lock says at once whether it is alive.
IDEMPOTENCY_STALE_SECONDS = env.int("IDEMPOTENCY_STALE_SECONDS", default=120)
# Retry-After of a 503 answered because the database or Redis is unreachable.
OUTAGE_RETRY_AFTER_SECONDS = env.int("OUTAGE_RETRY_AFTER_SECONDS", default=2)

# --- PSP ------------------------------------------------------------------
PSP_PROVIDER = env.str("PSP_PROVIDER", default="sandbox")
# Payee verification (README "Providers"): what a new account's payout_status starts as. A serious
# deployment keeps "unverified" (payouts wait until support or the PSP verifies the payee); accounts
# that existed before the feature were set to "verified" by the migration that added it.
PAYOUT_STATUS_DEFAULT = env.str("PAYOUT_STATUS_DEFAULT", default="unverified")
if PAYOUT_STATUS_DEFAULT not in ("unverified", "verified"):
    raise ImproperlyConfigured("PAYOUT_STATUS_DEFAULT must be 'unverified' or 'verified'.")
PAYEE_PAUSE_AFTER_FAILURES = env.int("PAYEE_PAUSE_AFTER_FAILURES", default=3)
# Upload links (POST /escrows/{id}/upload-links, /u/{token}): requests per minute per link and per IP.
UPLOAD_LINK_RATE_PER_LINK = env.int("UPLOAD_LINK_RATE_PER_LINK", default=30)
UPLOAD_LINK_RATE_PER_IP = env.int("UPLOAD_LINK_RATE_PER_IP", default=60)
# Signed proof file URLs (GET /proofs/{id}/file-url): lifetime in seconds, at most 15 minutes.
PROOF_FILE_URL_SECONDS = min(env.int("PROOF_FILE_URL_SECONDS", default=600), 900)
PSP_WEBHOOK_TOLERANCE_SECONDS = env.int("PSP_WEBHOOK_TOLERANCE_SECONDS", default=300)
# PSP_WEBHOOK_SECRET / PSP_WEBHOOK_SECRET_NEXT / STRIPE_WEBHOOK_SECRET are read
# from the environment on every request (rotation without restart): see webhooks.
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")

# Past an escrow's deadline: auto_approve (default) | notify | refund — see
# escrow.deadlines.escrow_check_deadline for what each does.
ESCROW_DEADLINE_POLICY = env.str("ESCROW_DEADLINE_POLICY", default="auto_approve")
# Payout retries (sweeper): attempts before giving up with an Alert, and the
# base of the exponential backoff between them.
PAYOUT_MAX_ATTEMPTS = env.int("PAYOUT_MAX_ATTEMPTS", default=5)
PAYOUT_RETRY_BASE_SECONDS = env.int("PAYOUT_RETRY_BASE_SECONDS", default=60)

# --- Proof checks, OCR, AI --------------------------------------------------
OCR_ENABLED = env.bool("OCR_ENABLED", default=True)
OCR_LANGUAGES = env.str("OCR_LANGUAGES", default="fra+eng")
AI_PROOF_ADVISOR_ENABLED = env.bool("AI_PROOF_ADVISOR_ENABLED", default=False)
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
AI_MODEL = env.str("AI_MODEL", default="gpt-4o-mini")
AI_TIMEOUT_SECONDS = env.float("AI_TIMEOUT_SECONDS", default=15.0)
# A RUNNING AI job older than AI_TIMEOUT_SECONDS + this has no live worker: the
# sweep (and a redelivered message) claims it again. Keep the sum below
# CELERY_VISIBILITY_TIMEOUT_SECONDS.
AI_STALE_MARGIN_SECONDS = env.int("AI_STALE_MARGIN_SECONDS", default=15)
AI_DAILY_CALL_LIMIT = env.int("AI_DAILY_CALL_LIMIT", default=1000)
# The advisor's circuit breaker (state in Redis): opens after this many
# failures within a minute, half-opens after the cool-down.
AI_BREAKER_FAILURES = env.int("AI_BREAKER_FAILURES", default=5)
AI_BREAKER_COOLDOWN_SECONDS = env.int("AI_BREAKER_COOLDOWN_SECONDS", default=60)

# --- Metrics ----------------------------------------------------------------
# Empty: /metrics answers loopback clients only. Set: a bearer token is required.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Logging ----------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "kobatela.core.logging.RequestIdFilter"},
        "mask": {"()": "kobatela.core.logging.MaskingFilter"},
    },
    "formatters": {
        "json": {"()": "kobatela.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id", "mask"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Admin back office -------------------------------------------------------
# Staff log into the admin (ADMIN_URL_PATH) with Django's login form; the API
# never does (API keys). django-axes guards that form against brute force:
# after AXES_FAILURE_LIMIT failures for one username from one IP address,
# that pair is refused (HTTP 429) for AXES_COOLOFF_TIME; a success resets the
# count. The IP is REMOTE_ADDR (django-ipware is not installed): behind a
# proxy every client shares the proxy's address, and the username half of
# the pair still keeps one person's mistakes from locking out the others.
from datetime import timedelta  # noqa: E402

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before any password check
    "django.contrib.auth.backends.ModelBackend",
]
# Attempts and lockouts live in the database, not the cache: the admin login
# keeps its brute-force guard (and keeps working) while Redis is down.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The admin's login form posts the email in a field named "username" (Django's
# AuthenticationForm); axes would otherwise look for USERNAME_FIELD ("email").
AXES_USERNAME_FORM_FIELD = "username"

# --- Outbound webhooks (webhooks.outbound.delivery)-----------------------------------
# On: webhook URLs may use http and reach loopback/private addresses (local
# runs, tests). Refused in production by a system check. Cloud metadata,
# link-local and multicast addresses stay refused regardless.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=15.0)
WEBHOOK_MAX_ENDPOINTS_PER_ACCOUNT = env.int("WEBHOOK_MAX_ENDPOINTS_PER_ACCOUNT", default=10)
