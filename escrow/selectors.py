from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects

from escrow.models import EscrowAgreement, EscrowEvent, Milestone
from kobatela.core.actor import Actor
from kobatela.core.errors import NotFound
from kobatela.core.rows import lock_owned_row


def _milestones_in_order() -> Prefetch:
    return Prefetch("milestones", queryset=Milestone.objects.order_by("idx"))


def escrow_party_filter(actor: Actor, *, as_provider: bool = False) -> Q:
    """The escrows an actor that does not see every account may touch: those its
    account owns as client (any key but a provider-only one) and, where the
    provider may act too (``as_provider``) and the key has the ``provider``
    scope, those its account is the provider of."""
    parties = Q(pk__in=[])
    if actor.acts_as_client:
        parties |= Q(client_id=actor.user_id)
    if as_provider and actor.acts_as_provider:
        parties |= Q(provider_id=actor.user_id)
    return parties


def escrow_list_for(actor: Actor, *, as_provider: bool = False) -> QuerySet[EscrowAgreement]:
    """The escrows an actor may see, milestones prefetched (one query for all of them)."""
    qs = EscrowAgreement.objects.prefetch_related(_milestones_in_order())
    return qs if actor.sees_all else qs.filter(escrow_party_filter(actor, as_provider=as_provider))


def escrow_list_for_provider(actor: Actor) -> QuerySet[EscrowAgreement]:
    """``GET /provider/escrows``: the escrows the actor's account is the provider of, whatever else it may see."""
    return EscrowAgreement.objects.prefetch_related(_milestones_in_order()).filter(provider_id=actor.user_id)


def escrow_prefetch_milestones(escrow: EscrowAgreement) -> EscrowAgreement:
    """Load an escrow's milestones, in order, in one query, onto an escrow a
    service returned (services lock and return the row alone)."""
    prefetch_related_objects([escrow], _milestones_in_order())
    return escrow


def escrow_lock(escrow_id: int, actor: Actor | None = None, *, as_provider: bool = False) -> EscrowAgreement:
    """Lock the escrow row (``SELECT … FOR UPDATE``) until the transaction ends —
    always the first lock of a money movement touching an escrow (then its
    milestones, then payments). Given an actor, a sender may only lock its own
    and, ``as_provider``, a provider those it provides (else 404)."""
    queryset = EscrowAgreement.objects.all()
    if actor is not None and not actor.sees_all:
        queryset = queryset.filter(escrow_party_filter(actor, as_provider=as_provider))
    return lock_owned_row(queryset, escrow_id, actor=None, owner_field="client_id",
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
