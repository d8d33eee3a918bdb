from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from escrow.models import EscrowAgreement, EscrowEvent, Milestone
from kobatela.accounts.actor import Actor


def escrow_list_for(actor: Actor) -> QuerySet[EscrowAgreement]:
    """The escrows an actor may see, milestones prefetched (one query for all of them)."""
    qs = EscrowAgreement.objects.prefetch_related(Prefetch("milestones", queryset=Milestone.objects.order_by("idx")))
    return qs if actor.sees_all else qs.filter(client_id=actor.user_id)


def escrow_events_for(escrow: EscrowAgreement) -> QuerySet[EscrowEvent]:
    return EscrowEvent.objects.filter(escrow=escrow)
