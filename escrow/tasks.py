from __future__ import annotations

from celery import shared_task

from escrow import services
from kobatela.core.locks import periodic_job


@shared_task
def apply_deadlines() -> int:
    with periodic_job("escrow_deadlines") as acquired:
        return services.escrows_apply_deadlines() if acquired else 0
