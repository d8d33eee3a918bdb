"""Outbound events: the transactional outbox of what happened to an account's objects.

A service that changes state calls :func:`emit` inside its own transaction,
next to its ``audit.record``::

    events.emit(account_id=escrow.client_id, type="escrow.funded", resource=escrow)

``emit`` serializes the resource with the Read serializer its app registered
(:mod:`kobatela.events.registry`), inserts the :class:`Event` row and calls
the registered listeners in the same transaction (``webhooks`` creates one
delivery per subscribed endpoint and queues it after commit). If the
transaction rolls back, none of it exists and nothing is sent; if the commit
happens but a task message is lost, the delivery row is still PENDING and the
beat sweeper sends it.
"""

from __future__ import annotations

import json
from datetime import timezone as dt_timezone
from typing import Any

from django.db.models import Model
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder

from kobatela.core.serializers import represent
from kobatela.core.transactions import require_transaction
from kobatela.events import registry
from kobatela.events.catalogue import EVENT_TYPES
from kobatela.events.models import Event


def serialize_resource(resource: Model, serializer_class: type | None = None) -> tuple[str, dict[str, Any]]:
    """``(object type, the resource as the API shows it)`` as plain JSON values."""
    registered = registry.resource_for(type(resource))
    serializer = serializer_class or registered.serializer
    # Through DRF's encoder, as an API answer is rendered: decimals stay strings.
    return registered.object_type, json.loads(json.dumps(represent(serializer, resource), cls=JSONEncoder))


def event_payload(event: Event) -> dict[str, Any]:
    """An event as the API shows it (EventRead) and as a webhook body carries it: one shape."""
    return {
        "id": event.pk,
        "type": event.type,
        "created_at": event.created_at.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z"),
        "account_id": event.account_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "data": event.data,
        "context": event.context,
    }


def emit(*, account_id: int, type: str, resource: Model, context: dict[str, Any] | None = None,
         serializer_class: type | None = None) -> Event:
    """Record that ``type`` happened to ``resource`` (owned by ``account_id``) and tell the listeners.

    Must run inside the transaction that makes the change (it refuses to run
    outside one): the event commits, or rolls back, with it. ``context`` adds
    what the resource alone does not say (which milestone, for milestone
    events). ``serializer_class`` overrides the registered Read serializer.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}; add it to kobatela.events.catalogue.EVENT_TYPES.")
    require_transaction("emit()")
    object_type, data = serialize_resource(resource, serializer_class)
    event = Event.objects.create(account_id=account_id, type=type, object_type=object_type,
                                 object_id=str(resource.pk), data=data, context=context or {},
                                 created_at=timezone.now())
    for listener in registry.listeners():
        listener(event)
    return event
