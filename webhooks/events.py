"""Outbound events: the transactional outbox of what happened to an account's objects.

A service that changes state calls :func:`emit` inside its own transaction,
next to its ``audit.record``::

    events.emit(account_id=escrow.client_id, type="escrow.funded", resource=escrow)

``emit`` serializes the resource with the Read serializer the API answers
with (same fields, same masking: never raw OCR text, a full IBAN or an AI
prompt), inserts the :class:`~webhooks.models.Event` row, one
:class:`~webhooks.models.WebhookDelivery` per enabled endpoint of the account
subscribed to the type, and schedules those deliveries after commit. If the
transaction rolls back, none of it exists and nothing is sent; if the commit
happens but the task message is lost, the delivery row is still PENDING and
the beat sweeper sends it (``webhooks.outbound.deliveries_sweep``).
"""

from __future__ import annotations

import json
import logging
from datetime import timezone as dt_timezone
from functools import partial
from importlib import import_module
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from kombu.exceptions import OperationalError
from rest_framework.utils.encoders import JSONEncoder

from kobatela.core.serializers import represent
from webhooks.models import Event, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

# Every type an integrator may receive (and subscribe to). Mandate types are
# emitted by the spend app.
EVENT_TYPES: dict[str, str] = {
    "escrow.created": "An escrow was opened (DRAFT).",
    "escrow.funded": "Deposits reached the escrow's total (FUNDED).",
    "escrow.releasable": "A delivery was marked or a proof arrived (RELEASABLE).",
    "escrow.released": "Every milestone is paid (RELEASED).",
    "escrow.refunded": "What was left went back to the client (REFUNDED).",
    "escrow.cancelled": "The escrow was cancelled before funding (CANCELLED).",
    "milestone.approved": "A milestone was approved; its payout is created.",
    "milestone.rejected": "A milestone's proof was refused; a new proof may be sent.",
    "milestone.paid": "A milestone's payout settled (PAID).",
    "proof.submitted": "A proof was received.",
    "proof.approved": "A proof was approved (automatically or by a reviewer).",
    "proof.rejected": "A proof was rejected by a reviewer.",
    "proof.flagged": "The AI advisor scored a proof medium or high risk, or raised flags.",
    "payment.sent": "A payout was sent to the PSP.",
    "payment.settled": "The PSP paid the payout.",
    "payment.failed": "The payout failed (it may be retried).",
    "payment.refunded": "A settled payout came back.",
    "mandate.created": "A usage mandate was created.",
    "mandate.consumed": "A usage mandate's budget is used up.",
    "mandate.expired": "A usage mandate expired.",
}

# Model label → (object type, dotted path of the API's Read serializer). The
# serializers are imported when first used: the apps' services import this
# module, and their api modules import their services.
RESOURCES: dict[str, tuple[str, str]] = {
    "escrow.escrowagreement": ("escrow", "escrow.api.EscrowReadSerializer"),
    "payments.payment": ("payment", "payments.api.PaymentReadSerializer"),
    "proofs.proof": ("proof", "proofs.api.ProofReadSerializer"),
    "spend.usagemandate": ("mandate", "spend.api.MandateReadSerializer"),
}


def _import(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def serialize_resource(resource: Model, serializer_class: type | None = None) -> tuple[str, dict[str, Any]]:
    """``(object type, the resource as the API shows it)`` as plain JSON values."""
    label = resource._meta.label_lower
    if label not in RESOURCES:
        raise ValueError(f"No event serializer for {label}; add it to webhooks.events.RESOURCES.")
    object_type, dotted = RESOURCES[label]
    serializer = serializer_class or _import(dotted)
    # Through DRF's encoder, as an API answer is rendered: decimals stay strings.
    return object_type, json.loads(json.dumps(represent(serializer, resource), cls=JSONEncoder))


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


def _deliver_after_commit(delivery_id: int) -> None:
    from webhooks.tasks import deliver_webhook

    try:
        deliver_webhook.delay(delivery_id)
    except OperationalError:
        # The broker is down: the change is committed and must not fail for
        # it. The row stays PENDING and due; the beat sweeper sends it.
        logger.warning("webhook delivery not queued, left to the sweeper", extra={"delivery_id": delivery_id})


def emit(*, account_id: int, type: str, resource: Model, context: dict[str, Any] | None = None,
         serializer_class: type | None = None) -> Event:
    """Record that ``type`` happened to ``resource`` (owned by ``account_id``) and queue its webhooks.

    Must run inside the transaction that makes the change (it refuses to run
    outside one): the event commits, or rolls back, with it. ``context`` adds
    what the resource alone does not say (which milestone, for milestone
    events). ``serializer_class`` overrides the Read serializer of
    :data:`RESOURCES`.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}; add it to webhooks.events.EVENT_TYPES.")
    if not connection.in_atomic_block:
        raise RuntimeError("emit() must be called inside the transaction that makes the change.")
    object_type, data = serialize_resource(resource, serializer_class)
    now = timezone.now()
    event = Event.objects.create(account_id=account_id, type=type, object_type=object_type,
                                 object_id=str(resource.pk), data=data, context=context or {}, created_at=now)
    endpoints = WebhookEndpoint.objects.filter(account_id=account_id, status=WebhookEndpoint.Status.ENABLED)
    create_deliveries(event=event, endpoints=[e for e in endpoints if e.subscribes_to(type)], now=now)
    return event


def create_deliveries(*, event: Event, endpoints: list[WebhookEndpoint], now=None) -> list[WebhookDelivery]:
    """PENDING deliveries of ``event``, due now, each sent by a task after commit."""
    now = now or timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, created_at=now) for endpoint in endpoints
    )
    for delivery in deliveries:
        transaction.on_commit(partial(_deliver_after_commit, delivery.pk))
    return deliveries
