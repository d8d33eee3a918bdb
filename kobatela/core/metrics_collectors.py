"""The core's domain gauges, computed at each scrape of the web's ``/metrics``
(registered in ``CoreConfig.ready()``; see ``kobatela.core.metrics``).

* ``kobatela_queue_depth{queue}`` — messages waiting in each Celery queue
  (Redis ``LLEN`` of the queue's lists, priority lists included).
* ``kobatela_periodic_job_age_seconds{job}`` — seconds since each periodic
  job last ran to the end (``kobatela.core.locks.periodic_job`` stamps it):
  the sweeper lag. ``job="beat"`` is the scheduler heartbeat.
"""

from __future__ import annotations

from typing import Iterable

import redis
from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from kobatela.core.circuit_breaker import redis_client
from kobatela.core.locks import JOB_STAMP_PREFIX
from kobatela.core.models import SchedulerHeartbeat

# kombu's Redis transport keeps a queue's priority levels in lists named
# "<queue>" + "\x06\x16" + "<priority>" (its default steps: 0, 3, 6, 9).
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)

def _broker() -> redis.Redis | None:
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://")):
        return None
    return redis_client(url)


def queue_names() -> list[str]:
    from celery import current_app as app  # kobatela.celery's app (it imports the core, not the reverse)

    names = {app.conf.task_default_queue or "celery"}
    names.update(route.get("queue") for route in (app.conf.task_routes or {}).values()
                 if isinstance(route, dict) and route.get("queue"))
    return sorted(names)


def queue_depth() -> Iterable[Metric]:
    client = _broker()
    if client is None:
        return []
    family = GaugeMetricFamily("kobatela_queue_depth", "Messages waiting in a Celery queue (Redis LLEN).",
                               labels=["queue"])
    pipe = client.pipeline(transaction=False)
    names = queue_names()
    for name in names:
        pipe.llen(name)
        for step in _PRIORITY_STEPS:
            pipe.llen(f"{name}{_PRIORITY_SEP}{step}")
    lengths = pipe.execute()
    per_queue = len(_PRIORITY_STEPS) + 1
    for index, name in enumerate(names):
        family.add_metric([name], sum(lengths[index * per_queue:(index + 1) * per_queue]))
    return [family]


def periodic_job_ages() -> Iterable[Metric]:
    family = GaugeMetricFamily("kobatela_periodic_job_age_seconds",
                               "Seconds since a periodic job last ran to the end (job=\"beat\": the heartbeat).",
                               labels=["job"])
    now = timezone.now()
    for name, beat_at in SchedulerHeartbeat.objects.values_list("name", "beat_at"):
        job = name[len(JOB_STAMP_PREFIX):] if name.startswith(JOB_STAMP_PREFIX) else name
        family.add_metric([job], round((now - beat_at).total_seconds(), 3))
    return [family]
