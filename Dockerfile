# Kobatela production image: gunicorn (web), or the same image with
# `celery -A kobatela worker` / `celery -A kobatela beat` (docker-compose.yml).
# Configuration comes from the environment only (.env.example lists it); the
# image holds no secret.
FROM python:3.11-slim-bookworm

# OMP_THREAD_LIMIT=1: one tesseract thread per process (web and worker
# processes already run in parallel). PROMETHEUS_MULTIPROC_DIR: every process
# writes its metrics there; compose mounts one volume there for web, worker and
# beat, so the web's /metrics adds them all up (kobatela/core/metrics.py). Created
# here, owned by the app user, so that a new named volume inherits that owner.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_THREAD_LIMIT=1 \
    MEDIA_ROOT=/app/media \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    WEB_CONCURRENCY=4

# OCR of French and English invoices and photos of documents.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 kobatela \
 && useradd --system --uid 10001 --gid kobatela --home-dir /app --no-create-home --shell /usr/sbin/nologin kobatela

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the pins change.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code belongs to root and is read-only for the app user; only media, the
# audit checkpoints' directory (AUDIT_CHECKPOINT_DIR) and metrics are writable.
COPY . .
RUN DJANGO_ENV=development DJANGO_SECRET_KEY=build-only-collectstatic-key-not-used-at-runtime \
    python manage.py collectstatic --noinput -v 0 \
 && mkdir -p /app/media /app/audit-checkpoints /tmp/prometheus \
 && chown kobatela:kobatela /app/media /app/audit-checkpoints /tmp/prometheus

USER kobatela

EXPOSE 8000

# /health/live answers while the process serves. The Host header is the first
# DJANGO_ALLOWED_HOSTS entry (a leading "." wildcard stripped; "*" → localhost),
# so the probe is never refused as a disallowed host.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; h = os.environ.get('DJANGO_ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8000/health/live', headers={'Host': h}), timeout=4)"]

# Sync workers (measured best): one per core when PostgreSQL shares the host
# (bench/README.md), more when workers also wait on a remote database; set WEB_CONCURRENCY to tune.
CMD ["sh", "-c", "exec gunicorn kobatela.wsgi --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-4} --access-logfile -"]
