from __future__ import annotations

from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from escrow.models import EscrowAgreement, EscrowEvent, Milestone
from kobatela.core.actor import Actor
from kobatela.core.errors import NotFound
from kobatela.core.rows import lock_owned_row


def _milestones_in_order() -> Prefetch:
    return Prefetch("milestones", queryset=Milestone.objects.order_by("idx"))


def escrow_list_for(actor: Actor) -> QuerySet[EscrowAgreement]:
    """The escrows an actor may see, milestones prefetched (one query for all of them)."""
    qs = EscrowAgreement.objects.prefetch_related(_milestones_in_order())
    return qs if actor.sees_all else qs.filter(client_id=actor.user_id)


def escrow_prefetch_milestones(escrow: EscrowAgreement) -> EscrowAgreement:
    """Load an escrow's milestones, in order, in one query, onto an escrow a
    service returned (services lock and return the row alone)."""
    prefetch_related_objects([escrow], _milestones_in_order())
    return escrow


def escrow_lock(escrow_id: int, actor: Actor | None = None) -> EscrowAgreement:
    """Lock the escrow row (``SELECT … FOR UPDATE``) until the transaction ends —
    always the first lock of a money movement touching an escrow (then its
    milestones, then payments). Given an actor, a sender may only lock its own
    (else 404)."""
    return lock_owned_row(EscrowAgreement.objects.all(), escrow_id, actor=actor, owner_field="client_id",
                          missing=NotFound("escrow_not_found", "No such escrow."))


def escrow_milestones_lock(escrow: EscrowAgreement) -> list[Milestone]:
    """Lock a (locked) escrow's milestones, in order."""
    return list(Milestone.objects.select_for_update().filter(escrow=escrow).order_by("idx"))


def milestone_lock(milestone_id: int) -> Milestone:
    return Milestone.objects.select_for_update().get(pk=milestone_id)


def escrow_opened_funding_session(escrow_id: int, session_id: str) -> bool:
    """Whether Kobatela opened PSP funding session ``session_id`` for this escrow
    (``escrow_funding_session`` records each one it opens)."""
    return EscrowEvent.objects.filter(escrow_id=escrow_id, kind="funding_session_created",
                                      data__session_id=session_id).exists()


def escrow_events_for(escrow: EscrowAgreement) -> QuerySet[EscrowEvent]:
    return EscrowEvent.objects.filter(escrow=escrow)
