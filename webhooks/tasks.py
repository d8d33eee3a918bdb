"""Celery entry points of outbound webhooks.

The retry policy is not Celery's here: it lives on the delivery row
(``next_attempt_at``), because a retry held in a broker message dies with
that message. A task only ever sends what the database says is due.
"""

from __future__ import annotations

from celery import shared_task

from kobatela.core.locks import periodic_job
from webhooks.outbound import delivery


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: int) -> str:
    """Idempotent: a duplicate or late message finds the attempt claimed or done and does nothing."""
    return delivery.delivery_attempt(delivery_id=delivery_id)


@shared_task
def sweep_deliveries() -> int:
    with periodic_job("sweep_deliveries") as acquired:
        return delivery.deliveries_sweep() if acquired else 0
