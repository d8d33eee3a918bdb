from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from escrow.models import EscrowAgreement, EscrowEvent, Milestone
from kobatela.accounts.actor import Actor
from kobatela.core import db


def _milestones_in_order() -> Prefetch:
    return Prefetch("milestones", queryset=Milestone.objects.order_by("idx"))


def escrow_list_for(actor: Actor) -> QuerySet[EscrowAgreement]:
    """The escrows an actor may see, milestones prefetched (one query for all of them)."""
    qs = EscrowAgreement.objects.prefetch_related(_milestones_in_order())
    return qs if actor.sees_all else qs.filter(client_id=actor.user_id)


def escrow_prefetch_milestones(escrow: EscrowAgreement) -> EscrowAgreement:
    """(Re)load an escrow's milestones in one query, e.g. after a service changed them.

    Fills the related manager's cache directly, through ``core.db.select``:
    the deposit response runs this on every call, and ``prefetch_related_objects``
    or a compiled queryset cost more than the query.
    """
    milestones = Milestone.objects.filter(escrow_id=escrow.pk).order_by("idx")
    # An evaluated queryset, as prefetch_related leaves it: escrow.milestones.all() returns it.
    milestones._result_cache = db.select(Milestone, where={"escrow_id": escrow.pk}, order_by=["idx"])
    milestones._prefetch_done = True
    escrow._prefetched_objects_cache = {**getattr(escrow, "_prefetched_objects_cache", {}), "milestones": milestones}
    return escrow


def escrow_events_for(escrow: EscrowAgreement) -> QuerySet[EscrowEvent]:
    return EscrowEvent.objects.filter(escrow=escrow)
