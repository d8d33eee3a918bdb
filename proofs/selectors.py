from __future__ import annotations

from django.db.models import Q, QuerySet

from kobatela.core.actor import Actor
from proofs.models import Proof, UploadLink


def proof_list_for(actor: Actor) -> QuerySet[Proof]:
    qs = Proof.objects.all()
    return qs if actor.sees_all else qs.filter(owner_id=actor.user_id)


def upload_link_list_for(actor: Actor) -> QuerySet[UploadLink]:
    """Upload links of the escrows an actor owns as client (staff: all)."""
    qs = UploadLink.objects.select_related("milestone")
    return qs if actor.sees_all else qs.filter(escrow__client_id=actor.user_id if actor.acts_as_client else None)


def proof_list_for_party(actor: Actor) -> QuerySet[Proof]:
    """Proofs an actor may reach as a party: its own (client) and, for a provider key,
    those of the escrows it provides (staff: all)."""
    if actor.sees_all:
        return Proof.objects.all()
    parties = Q(pk__in=[])
    if actor.acts_as_client:
        parties |= Q(owner_id=actor.user_id)
    if actor.acts_as_provider:
        parties |= Q(escrow__provider_id=actor.user_id)
    return Proof.objects.filter(parties)
