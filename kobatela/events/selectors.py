"""Reads of events, scoped to the caller."""

from __future__ import annotations

from django.db.models import QuerySet

from kobatela.core.actor import Actor
from kobatela.events.models import Event


def event_list_for(actor: Actor) -> QuerySet[Event]:
    qs = Event.objects.all()
    return qs if actor.sees_all else qs.filter(account_id=actor.user_id)
