"""gunicorn settings read from the working directory (``gunicorn kobatela.wsgi``
finds this file by itself; the command line still wins).

* JSON logs: gunicorn's own lines and the access log go through the
  application's JSON formatter and masking (``kobatela.core.gunicorn_logging``).
* Prometheus multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (a
  directory the Celery worker and beat of this host share): the master names
  its family ``web``, removes the web family's files (and the one-off
  commands') of a previous run before it forks any worker — never a worker's —,
  and forgets a dead worker's live gauges under the same name (``child_exit``);
  every process's counters are added up at each scrape of ``/metrics``
  (``kobatela.core.metrics``).
"""

import os

logger_class = "kobatela.core.gunicorn_logging.JsonLogger"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # "-": stdout (JSON); empty: no access log
errorlog = "-"


def on_starting(server):
    from kobatela.core import metrics

    metrics.set_process_family("web")
    metrics.prepare_multiprocess_dir(metrics.ONE_OFF)


def child_exit(server, worker):
    from kobatela.core import metrics

    metrics.process_exited(worker.pid)
