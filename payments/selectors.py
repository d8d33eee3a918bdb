from __future__ import annotations

from django.db.models import QuerySet

from kobatela.accounts.actor import Actor
from payments.models import Payment


def payment_list_for(actor: Actor) -> QuerySet[Payment]:
    qs = Payment.objects.all()
    return qs if actor.sees_all else qs.filter(owner_id=actor.user_id)
