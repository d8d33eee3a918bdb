from __future__ import annotations

from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from escrow.models import EscrowAgreement, EscrowEvent, Milestone
from kobatela.core.actor import Actor
from kobatela.core.errors import NotFound


def _milestones_in_order() -> Prefetch:
    return Prefetch("milestones", queryset=Milestone.objects.order_by("idx"))


def escrow_list_for(actor: Actor) -> QuerySet[EscrowAgreement]:
    """The escrows an actor may see, milestones prefetched (one query for all of them)."""
    qs = EscrowAgreement.objects.prefetch_related(_milestones_in_order())
    return qs if actor.sees_all else qs.filter(client_id=actor.user_id)


def escrow_prefetch_milestones(escrow: EscrowAgreement) -> EscrowAgreement:
    """(Re)load an escrow's milestones in one query, e.g. after a service changed them."""
    if hasattr(escrow, "_prefetched_objects_cache"):
        escrow._prefetched_objects_cache.pop("milestones", None)  # Django's documented way to drop a prefetch
    prefetch_related_objects([escrow], _milestones_in_order())
    return escrow


def escrow_lock(escrow_id: int, actor: Actor | None = None) -> EscrowAgreement:
    """Lock the escrow row (``SELECT … FOR UPDATE``) until the transaction ends —
    always the first lock of a money movement touching an escrow (then its
    milestones, then payments). Given an actor, a sender may only lock its own
    (else 404)."""
    qs = EscrowAgreement.objects.select_for_update()
    if actor is not None and not actor.sees_all:
        qs = qs.filter(client_id=actor.user_id)
    try:
        return qs.get(pk=escrow_id)
    except EscrowAgreement.DoesNotExist:
        raise NotFound("escrow_not_found", "No such escrow.") from None


def escrow_milestones_lock(escrow: EscrowAgreement) -> list[Milestone]:
    """Lock a (locked) escrow's milestones, in order."""
    return list(Milestone.objects.select_for_update().filter(escrow=escrow).order_by("idx"))


def milestone_lock(milestone_id: int) -> Milestone:
    return Milestone.objects.select_for_update().get(pk=milestone_id)


def escrow_events_for(escrow: EscrowAgreement) -> QuerySet[EscrowEvent]:
    return EscrowEvent.objects.filter(escrow=escrow)
