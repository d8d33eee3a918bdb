from __future__ import annotations

from celery import shared_task

from kobatela.core.actor import Actor
from kobatela.core.locks import periodic_job
from payments import services


@shared_task(acks_late=True)
def execute_payout(payment_id: int) -> str:
    """Idempotent: a second run finds the payout SENT (or the PSP dedups ``payout-<id>``)."""
    return services.payment_execute(payment_id=payment_id, actor=Actor.system("payout_task")).status


@shared_task
def sweep_payouts() -> int:
    with periodic_job("sweep_payouts") as acquired:
        return services.payments_sweep() if acquired else 0
