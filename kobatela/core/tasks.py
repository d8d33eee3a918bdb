from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from kobatela.core.idempotency import purge_expired_keys
from kobatela.core.locks import periodic_job
from kobatela.core.models import SchedulerHeartbeat

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "beat"


@shared_task
def heartbeat() -> None:
    """Proves the scheduler and a worker are alive; ``/health`` shows its age."""
    SchedulerHeartbeat.objects.update_or_create(name=HEARTBEAT_NAME, defaults={"beat_at": timezone.now()})


@shared_task
def purge_idempotency_keys() -> int:
    with periodic_job("purge_idempotency_keys") as acquired:
        if not acquired:
            return 0
        deleted = purge_expired_keys()
        logger.info("purged idempotency keys", extra={"deleted": deleted})
        return deleted
