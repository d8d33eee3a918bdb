import os

# Prometheus multiprocess mode (kobatela.core.metrics): every process writes its
# values under PROMETHEUS_MULTIPROC_DIR from its first metric on, so the
# directory must exist before any module makes one — also for one-off
# `manage.py` commands, whose files the next gunicorn or worker start removes.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from kobatela.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
