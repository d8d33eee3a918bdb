from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from escrow import repository
from escrow.models import Dispute, DisputeParty, DisputeStatus, EscrowAgreement, EscrowEvent, Milestone, Refund
from kobatela.core.actor import Actor
from kobatela.core.errors import NotFound
from kobatela.core.scopes import Scope


def _milestones_in_order() -> Prefetch:
    return Prefetch("milestones", queryset=Milestone.objects.order_by("idx"))


def escrow_party_fields(actor: Actor, *, as_provider: bool = False) -> dict[str, int]:
    """Which of an escrow's parties must be the actor's account for it to touch
    the escrow (any one of them), for an actor that does not see every account:
    the client (any key but a provider-only one) and, where the provider may act
    too (``as_provider``) and the key has the ``provider`` scope, the provider.
    Empty: none, so no escrow."""
    parties = {}
    if actor.acts_as_client:
        parties["client_id"] = actor.user_id
    if as_provider and actor.acts_as_provider:
        parties["provider_id"] = actor.user_id
    return parties


def escrow_party_filter(actor: Actor, *, as_provider: bool = False) -> Q:
    """:func:`escrow_party_fields` as a filter."""
    parties = Q(pk__in=[])
    for field, user_id in escrow_party_fields(actor, as_provider=as_provider).items():
        parties |= Q(**{field: user_id})
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
    service returned (services lock and return the row alone), where
    ``escrow.milestones.all()`` finds them as after ``prefetch_related``.
    Already loaded: nothing to do (as ``prefetch_related_objects``)."""
    if "milestones" in getattr(escrow, "_prefetched_objects_cache", {}):
        return escrow
    milestones = repository.escrow_milestones(escrow)
    for milestone in milestones:
        Milestone.escrow.field.set_cached_value(milestone, escrow)
    # What prefetch_related leaves behind (django.db.models.query.prefetch_one_level).
    queryset = escrow.milestones.all()
    queryset._result_cache = milestones
    queryset._prefetch_done = True
    escrow._prefetched_objects_cache = {**getattr(escrow, "_prefetched_objects_cache", {}), "milestones": queryset}
    return escrow


def escrow_lock(escrow_id: int, actor: Actor | None = None, *, as_provider: bool = False) -> EscrowAgreement:
    """Lock the escrow row (``SELECT … FOR UPDATE``) until the transaction ends —
    always the first lock of a money movement touching an escrow (then its
    milestones, then payments). Given an actor, a sender may only lock its own
    and, ``as_provider``, a provider those it provides (else 404: another
    tenant's escrow and no escrow answer alike, and the other's row is not locked)."""
    parties = None if actor is None or actor.sees_all else escrow_party_fields(actor, as_provider=as_provider)
    escrow = repository.escrow_row_lock(escrow_id, parties=parties) if parties != {} else None
    if escrow is None:
        raise NotFound("escrow_not_found", "No such escrow.")
    return escrow


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


# --- parties, disputes and refunds ------------------------------------------------------

def escrow_party_of(actor: Actor, escrow: EscrowAgreement) -> str | None:
    """Which side of the deal an API key speaks for: ``client`` (a sender key of the
    escrow's client), ``provider`` (a provider key of its provider), else ``None``
    (support, admin, the system, or a stranger)."""
    if actor.user_id is None:
        return None
    if escrow.client_id == actor.user_id and Scope.SENDER in actor.scopes:
        return DisputeParty.CLIENT
    if escrow.provider_id == actor.user_id and actor.acts_as_provider:
        return DisputeParty.PROVIDER
    return None


def escrow_lock_as_party(escrow_id: int, actor: Actor) -> EscrowAgreement:
    """Lock an escrow the actor is a party of (or any, for support/admin/system): else 404."""
    escrow = escrow_lock(escrow_id)
    if not actor.sees_all and escrow_party_of(actor, escrow) is None:
        raise NotFound("escrow_not_found", "No such escrow.")
    return escrow


def disputed_milestone_ids(escrow_id: int) -> set[int]:
    """The milestones of an escrow covered by its OPEN dispute."""
    return set(Dispute.milestones.through.objects.filter(dispute__escrow_id=escrow_id, dispute__status=DisputeStatus.OPEN)
               .values_list("milestone_id", flat=True))


def milestone_is_disputed(milestone_id: int) -> bool:
    return Dispute.milestones.through.objects.filter(milestone_id=milestone_id,
                                                     dispute__status=DisputeStatus.OPEN).exists()


def escrow_open_dispute(escrow_id: int) -> Dispute | None:
    return Dispute.objects.filter(escrow_id=escrow_id, status=DisputeStatus.OPEN).first()


def dispute_list_for(actor: Actor) -> QuerySet[Dispute]:
    """Disputes of the escrows the actor is a party of (all, for support/admin), messages and milestones prefetched."""
    qs = Dispute.objects.select_related("escrow").prefetch_related("messages", "milestones").order_by("created_at", "id")
    if actor.sees_all:
        return qs
    return qs.filter(escrow__in=EscrowAgreement.objects.filter(escrow_party_filter(actor, as_provider=True)))


def dispute_lock(dispute_id: int, actor: Actor | None = None) -> Dispute:
    """Lock a dispute (after its escrow's lock) the actor may see, else 404."""
    visible = dispute_list_for(actor) if actor is not None else Dispute.objects.all()
    ids = visible.filter(pk=dispute_id).values_list("pk", flat=True)
    try:
        return Dispute.objects.select_for_update().get(pk__in=ids)
    except Dispute.DoesNotExist:
        raise NotFound("dispute_not_found", "No such dispute.") from None


def dispute_escrow_id(dispute_id: int, actor: Actor) -> int:
    escrow_id = dispute_list_for(actor).filter(pk=dispute_id).values_list("escrow_id", flat=True).first()
    if escrow_id is None:
        raise NotFound("dispute_not_found", "No such dispute.")
    return escrow_id


def refund_list_for(actor: Actor) -> QuerySet[Refund]:
    qs = Refund.objects.order_by("-created_at", "-id")
    return qs if actor.sees_all else qs.filter(escrow__in=EscrowAgreement.objects.filter(escrow_party_filter(actor)))


def refund_lock(refund_id: int) -> Refund:
    try:
        return Refund.objects.select_for_update().get(pk=refund_id)
    except Refund.DoesNotExist:
        raise NotFound("refund_not_found", "No such refund.") from None


def refund_escrow_id(refund_id: int) -> int | None:
    return Refund.objects.filter(pk=refund_id).values_list("escrow_id", flat=True).first()


def refunds_in_flight(escrow_id: int) -> bool:
    return Refund.objects.filter(escrow_id=escrow_id, status__in=Refund.IN_FLIGHT).exists()
