"""The one way work leaves a transaction for a Celery worker.

``enqueue_on_commit("payments.tasks.execute_payout", payment.pk)`` sends the
task by name once the surrounding transaction commits (at once outside one).
It never raises into the caller: by then the change is committed and its
answer must not turn into an error. If the broker cannot take the message
(Redis down, a connection refused or timed out), the failure is logged and
counted in ``kobatela_enqueue_failures_total``, and nothing else happens —
the row's status (payment PENDING, proof ``ocr_status=QUEUED``, delivery
PENDING) is the real queue, and the beat sweepers send what is due.

Sending by name keeps services free of their tasks modules (no import
circle); with ``CELERY_TASK_ALWAYS_EAGER`` (``make run``, tests) the task
runs in-process after commit instead, as ``.delay`` would.
"""

from __future__ import annotations

import logging
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client import Counter
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

ENQUEUE_FAILURES = Counter(
    "kobatela_enqueue_failures_total",
    "Task messages the broker did not take, left to the sweepers, by task.",
    ["task"],
)

# What a broker that is down, unreachable or refusing raises while publishing.
BROKER_ERRORS = (BrokerError, RedisError, OSError)  # OSError: refused, reset, timed out


def enqueue_on_commit(task_name: str, *ids: int) -> None:
    """Queue ``task_name(*ids)`` after the current transaction commits; never raises."""
    transaction.on_commit(partial(enqueue, task_name, *ids))


def enqueue(task_name: str, *ids: int) -> bool:
    """Queue ``task_name(*ids)`` now (sweepers, which run outside any transaction).
    Returns whether the broker took the message; a refusal is logged and counted."""
    app = current_app
    try:
        # Django's setting, read now: Celery reads its copy once per process.
        if settings.CELERY_TASK_ALWAYS_EAGER:
            _registered(app, task_name).apply(args=ids, throw=settings.CELERY_TASK_EAGER_PROPAGATES)
        else:
            app.send_task(task_name, args=ids)
    except BROKER_ERRORS as exc:
        ENQUEUE_FAILURES.labels(task=task_name).inc()
        logger.warning("task not queued, left to the sweeper",
                       extra={"task": task_name, "ids": list(ids), "error": f"{type(exc).__name__}: {exc}"[:200]})
        return False
    return True


def _registered(app, task_name: str):
    """The task object, importing the apps' tasks modules once if it is not known yet."""
    if task_name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[task_name]
