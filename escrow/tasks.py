from __future__ import annotations

from celery import shared_task

from escrow import deadlines, refunds, services
from kobatela.core.actor import Actor
from kobatela.core.locks import periodic_job


@shared_task
def apply_deadlines() -> int:
    with periodic_job("escrow_deadlines") as acquired:
        return deadlines.escrows_apply_deadlines() if acquired else 0


@shared_task
def release_due_inspections() -> int:
    with periodic_job("escrow_inspections") as acquired:
        return services.escrow_release_due_inspections() if acquired else 0


@shared_task(acks_late=True)
def send_refund(refund_id: int) -> str:
    """Idempotent: a second run finds the refund SENT (or the PSP dedups ``refund-<id>``)."""
    return refunds.refund_send(refund_id=refund_id, actor=Actor.system("refund_task")).status


@shared_task
def sweep_refunds() -> int:
    with periodic_job("sweep_refunds") as acquired:
        return refunds.refunds_sweep() if acquired else 0
