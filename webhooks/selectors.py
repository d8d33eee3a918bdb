"""Reads of webhook endpoints and their deliveries, scoped to the caller."""

from __future__ import annotations

from django.db.models import QuerySet

from kobatela.core.actor import Actor
from webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoint_list_for(actor: Actor) -> QuerySet[WebhookEndpoint]:
    """Live endpoints (a deleted one is not found)."""
    qs = WebhookEndpoint.objects.exclude(status=WebhookEndpoint.Status.DELETED)
    return qs if actor.sees_all else qs.filter(account_id=actor.user_id)


def deliveries_of(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).select_related("event")
