import os

# Prometheus multiprocess mode (kobatela.core.metrics): every process writes its
# values under PROMETHEUS_MULTIPROC_DIR from its first metric on, so the
# directory must exist, and the file names carry the process family and host
# (web, worker and beat share the directory), before any module makes one —
# also for one-off `manage.py` commands (family `cmd`, removed at the web's next start).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

    from kobatela.core.metrics import install_process_identifier

    install_process_identifier()

from kobatela.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
