from __future__ import annotations

from celery import shared_task

from kobatela.core.actor import Actor
from kobatela.core.locks import periodic_job
from spend import services


@shared_task
def expire_mandates() -> int:
    """Beat job: expire every ACTIVE mandate past its expiry, returning what is left."""
    with periodic_job("expire_mandates") as acquired:
        return services.mandates_expire_due(actor=Actor.system("mandate_expiry")) if acquired else 0
