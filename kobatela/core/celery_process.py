"""What a Celery worker or beat process does around the tasks: logging, ids, metrics.

Connected once, from ``kobatela.celery``:

* **Logging.** Celery does not touch the root logger
  (``CELERY_WORKER_HIJACK_ROOT_LOGGER = False``) and, through the
  ``setup_logging`` signal, configures nothing of its own: worker and beat use
  ``settings.LOGGING`` — the same JSON formatter and masking filter as the web.
* **Ids.** A task published while a request is served carries that request's
  id in the message headers (``before_task_publish``); the worker puts it
  back in the context with the task's id and name for the task's duration,
  so every log line of the task names both.
* **Metrics.** ``kobatela_celery_tasks_total{task,outcome}`` and
  ``kobatela_celery_task_seconds{task}``. A worker's processes are the family
  ``worker-<node name>`` in the multiprocess directory it shares with the web
  (whose ``/metrics`` adds them up), and it removes only that family's files
  at start; beat is the family ``beat``. With ``WORKER_METRICS_PORT`` set
  (a worker on a host with no web) the worker's main process also serves its
  family's counters over HTTP (``kobatela.core.metrics``).
"""

from __future__ import annotations

import logging
import logging.config
import os
import time

from celery import signals
from prometheus_client import Counter, Histogram

from kobatela.core import metrics
from kobatela.core.request_context import get_request_id, reset_request_id, reset_task, set_request_id, set_task

REQUEST_ID_HEADER = "kobatela_request_id"

TASKS = Counter("kobatela_celery_tasks_total", "Celery tasks run, by task and outcome.", ["task", "outcome"])
TASK_SECONDS = Histogram("kobatela_celery_task_seconds", "Celery task duration.", ["task"],
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))

# task id → (context tokens, start time), for the task running in this process.
_running: dict[str, tuple[object, object, float]] = {}


@signals.setup_logging.connect
def _configure_logging(**kwargs) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.celeryd_init.connect
def _worker_starts(sender=None, instance=None, conf=None, **kwargs) -> None:
    if instance is not None:
        instance.quiet = True  # no ASCII-art banner on stdout: one JSON line instead
    logging.getLogger("celery.worker").info("worker starting", extra={"node": sender})
    metrics.set_process_family("worker-" + str(sender or "celery").split("@")[0])
    metrics.prepare_multiprocess_dir()
    port = int(os.environ.get("WORKER_METRICS_PORT") or 0)
    if port:
        metrics.serve_worker_metrics(port, os.environ.get("WORKER_METRICS_ADDRESS", "0.0.0.0"))


@signals.beat_init.connect
def _beat_starts(**kwargs) -> None:
    metrics.set_process_family("beat")
    metrics.prepare_multiprocess_dir()


@signals.worker_process_shutdown.connect
def _pool_process_exits(pid=None, **kwargs) -> None:
    metrics.process_exited(pid or os.getpid())


@signals.before_task_publish.connect
def _carry_request_id(headers=None, **kwargs) -> None:
    request_id = get_request_id()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


@signals.task_prerun.connect
def _task_starts(task_id=None, task=None, **kwargs) -> None:
    # A task run eagerly inside a request (make run, tests) keeps that request's id.
    request_id = (getattr(task.request, REQUEST_ID_HEADER, None) if task is not None else None) or get_request_id()
    _running[task_id] = (set_request_id(request_id), set_task((task_id, task.name if task else "")),
                         time.monotonic())


@signals.task_postrun.connect
def _task_ends(task_id=None, task=None, state=None, **kwargs) -> None:
    name = task.name if task is not None else "unknown"
    TASKS.labels(name, (state or "unknown").lower()).inc()
    entry = _running.pop(task_id, None)
    if entry is None:
        return
    request_token, task_token, started = entry
    TASK_SECONDS.labels(name).observe(time.monotonic() - started)
    # Back to what was there before the task (nothing in a worker; the request in an eager run):
    # prerun and postrun run on the same thread, in the same context.
    reset_task(task_token)
    reset_request_id(request_token)
