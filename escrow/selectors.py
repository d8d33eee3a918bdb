from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from escrow.models import EscrowAgreement, EscrowEvent, Milestone
from kobatela.accounts.actor import Actor


def _milestones_in_order() -> Prefetch:
    return Prefetch("milestones", queryset=Milestone.objects.order_by("idx"))


def escrow_list_for(actor: Actor) -> QuerySet[EscrowAgreement]:
    """The escrows an actor may see, milestones prefetched (one query for all of them)."""
    qs = EscrowAgreement.objects.prefetch_related(_milestones_in_order())
    return qs if actor.sees_all else qs.filter(client_id=actor.user_id)


def escrow_prefetch_milestones(escrow: EscrowAgreement) -> EscrowAgreement:
    """(Re)load an escrow's milestones in one query, e.g. after a service changed them.

    Fills the related manager's cache directly: the deposit response runs this
    on every call, and ``prefetch_related_objects`` costs more than the query.
    """
    milestones = Milestone.objects.filter(escrow_id=escrow.pk).order_by("idx")
    len(milestones)  # evaluate once; escrow.milestones.all() returns this cached queryset
    escrow._prefetched_objects_cache = {**getattr(escrow, "_prefetched_objects_cache", {}), "milestones": milestones}
    return escrow


def escrow_events_for(escrow: EscrowAgreement) -> QuerySet[EscrowEvent]:
    return EscrowEvent.objects.filter(escrow=escrow)
