from __future__ import annotations

from django.db.models import QuerySet

from kobatela.core.actor import Actor
from proofs.models import Proof


def proof_list_for(actor: Actor) -> QuerySet[Proof]:
    qs = Proof.objects.all()
    return qs if actor.sees_all else qs.filter(owner_id=actor.user_id)
