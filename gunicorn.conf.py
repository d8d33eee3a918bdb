"""gunicorn settings read from the working directory (``gunicorn kobatela.wsgi``
finds this file by itself; the command line still wins).

* JSON logs: gunicorn's own lines and the access log go through the
  application's JSON formatter and masking (``kobatela.core.gunicorn_logging``).
* Prometheus multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set: the
  master empties that directory before it forks any worker, and forgets a
  dead worker's live gauges (``child_exit``); every worker's counters are
  added up at each scrape of ``/metrics`` (``kobatela.core.metrics``).
"""

import os

logger_class = "kobatela.core.gunicorn_logging.JsonLogger"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"


def on_starting(server):
    from kobatela.core import metrics

    metrics.prepare_multiprocess_dir()


def child_exit(server, worker):
    from kobatela.core import metrics

    metrics.process_exited(worker.pid)
