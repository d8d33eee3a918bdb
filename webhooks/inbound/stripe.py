"""Stripe's events, translated to our actions.

A Stripe account may be shared with another product, and Stripe sends every
event type an endpoint subscribes to and retries anything but a 2xx for three
days. So once the signature holds, an event that has an id is stored and
answered 200, whatever it carries (``parse_stripe_event`` says how it ends):

=====================================================  ========  =====================
event                                                  stored    reason (examples)
=====================================================  ========  =====================
a type we do not act on (whatever its metadata:        IGNORED   event_type_not_handled
Stripe copies a PaymentIntent's onto its Charge)
a type we act on whose object carries none of our      IGNORED   not_ours
metadata keys (``escrow_id``, ``payment_id``,
``refund_id``)
a refund event whose Refund is not final yet           IGNORED   refund_not_final
(``pending``, ``requires_action``)
our keys, but the object or data is unusable           FAILED    unexpected_object,
(schema, wrong object, a transfer not ours)                      invalid_event_data,
                                                                 transfer_group_mismatch
usable, but naming no escrow/payment/session of ours   FAILED    escrow_not_found, …
=====================================================  ========  =====================

The two FAILED rows raise an alert (``webhooks.inbound.process``): they
look like ours, so something of ours (or someone holding our secret) is
wrong. A usable event refused by a business rule (an amount mismatch, a
transition the payment cannot make) is FAILED too, without an alert, as
before.

Refunds: every refund event (``refund.created``, ``refund.updated``,
``charge.refund.updated``, ``refund.failed``) carries the Refund, and its
``status`` decides — ``succeeded`` → ``refund.settled``, ``failed`` or
``canceled`` → ``refund.failed`` (``failure_reason`` as the failure code),
anything else waits for a later event. Our refund is the one named by
``metadata.refund_id`` (set by ``payments.psp.stripe_adapter.create_refund``,
which sends it with the key ``refund-<id>``); a Refund whose id is not the
one ours was sent as moves nothing (``refund_psp_ref_mismatch``). Stripe does
not promise the order of events: a ``succeeded`` arriving after a ``failed``
(or the reverse) is refused by the refund's state (409), stored FAILED for
support, and moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kobatela.core.errors import ValidationFailed
from kobatela.core.money import from_minor_units
from webhooks.inbound.schemas import MAX_EVENT_TYPE, Envelope, Ignored, ParsedEvent, check_event_id, validate
from webhooks.models import InboundEvent

# The metadata keys Kobatela writes on what it creates at Stripe (payments.psp.stripe_adapter):
# an object carrying none of them is not ours.
OUR_METADATA_KEYS = frozenset({"escrow_id", "payment_id", "refund_id"})


def _stripe_money(obj: dict[str, Any], amount_key: str) -> dict[str, Any]:
    """Stripe amounts are integers in minor units with a lowercase currency."""
    currency, minor = obj.get("currency"), obj.get(amount_key)
    if not isinstance(currency, str) or isinstance(minor, bool) or not isinstance(minor, int):
        raise ValidationFailed("invalid_event_data", "The event data has invalid fields.",
                               details={amount_key: ["An integer amount in minor units and a currency are required."]})
    try:
        amount = from_minor_units(minor, currency)
    except ValueError:
        raise ValidationFailed("invalid_event_data", "The event data has invalid fields.",
                               details={"currency": ["Not an ISO 4217 currency code."]}) from None
    return {"amount": str(amount), "currency": currency.upper()}


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _stripe_funding(obj: dict[str, Any]) -> dict[str, Any]:
    amount_key = "amount_received" if "amount_received" in obj else "amount"
    # The PaymentIntent is the funding session (payments.psp.stripe_adapter): the
    # handler checks it is one Kobatela opened for this escrow.
    return {"psp_ref": obj.get("id"), "session_id": obj.get("id"), "escrow_id": _metadata(obj).get("escrow_id"),
            **_stripe_money(obj, amount_key)}


def _our_transfer_payment_id(obj: dict[str, Any]) -> Any:
    """The payment a Transfer pays. Our transfers carry ``transfer_group =
    "payment-<id>"`` (payments.psp.stripe_adapter); another product's transfer
    whose metadata happens to name one of our payment ids must not move it."""
    payment_id = _metadata(obj).get("payment_id")
    if payment_id is not None and obj.get("transfer_group") != f"payment-{payment_id}":  # None: the schema says it
        raise ValidationFailed("transfer_group_mismatch", "The transfer is not one Kobatela made for this payment.",
                               details={"transfer_group": [f"Expected payment-{payment_id}."]})
    return payment_id


def _stripe_transfer_created(obj: dict[str, Any]) -> dict[str, Any]:
    # The Transfer is our payout (psp_ref = tr_…, see payments.psp.stripe_adapter).
    return {"payment_id": _our_transfer_payment_id(obj), "psp_ref": obj.get("id")}


def _stripe_payout(obj: dict[str, Any]) -> dict[str, Any]:
    # A Payout (po_…) is not the Transfer the payment references: its id is
    # left out so the payment keeps the transfer id that reconciliation reads.
    data = {"payment_id": _metadata(obj).get("payment_id"), **_stripe_money(obj, "amount")}
    reason = obj.get("failure_message") or obj.get("failure_code")
    if isinstance(reason, str):
        data["reason"] = reason[:500]
    if isinstance(obj.get("failure_code"), str):
        data["failure_code"] = obj["failure_code"][:64]
    return data


def _stripe_transfer_reversed(obj: dict[str, Any]) -> dict[str, Any]:
    # What was reversed must be the whole payout: a partial reversal fails the
    # amount check and waits for support instead of refunding everything.
    return {"payment_id": _our_transfer_payment_id(obj), **_stripe_money(obj, "amount_reversed")}


def _stripe_refund(obj: dict[str, Any]) -> dict[str, Any]:
    # The Refund (re_…) of the funding PaymentIntent, keyed refund-<id> with metadata.refund_id
    # (payments.psp.stripe_adapter); its psp_ref must be the one our refund was sent as.
    data = {"refund_id": _metadata(obj).get("refund_id"), "psp_ref": obj.get("id"), **_stripe_money(obj, "amount")}
    status = obj.get("status")
    reason = obj.get("failure_reason")
    if isinstance(reason, str) and reason:
        data["failure_code"] = reason[:64]
    elif status == "canceled":
        data["failure_code"] = "refund_canceled"
    if status in ("failed", "canceled"):
        data["reason"] = f"Stripe reports the refund {status}" + (f" ({reason})." if isinstance(reason, str) and reason
                                                                  else ".")
    return data


# A Refund's status at Stripe → our action. pending and requires_action (and any status
# Stripe may add) are not an outcome: the event is stored IGNORED, a later one tells.
REFUND_OUTCOMES = {"succeeded": "refund.settled", "failed": "refund.failed", "canceled": "refund.failed"}


def _refund_action(obj: dict[str, Any]) -> str | Ignored:
    status = obj.get("status")
    if not isinstance(status, str):
        raise ValidationFailed("invalid_event_data", "The event data has invalid fields.",
                               details={"status": ["The refund's status is required."]})
    action = REFUND_OUTCOMES.get(status)
    if action is None:
        return Ignored("refund_not_final", f"The refund is {status[:40]} at Stripe; its outcome comes in a later event.")
    return action


# Stripe type → (action, the object type it carries, how to read the action's data from that object).
# An action that is a function reads it from the object (a Refund: by its status).
STRIPE_EVENTS: dict[str, tuple[str | Callable[[dict[str, Any]], str | Ignored], str,
                               Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "payment_intent.succeeded": ("funding.succeeded", "payment_intent", _stripe_funding),
    "transfer.created": ("payout.sent", "transfer", _stripe_transfer_created),
    "payout.paid": ("payout.settled", "payout", _stripe_payout),
    "payout.failed": ("payout.failed", "payout", _stripe_payout),
    "transfer.reversed": ("payout.refunded", "transfer", _stripe_transfer_reversed),
    # Every refund event carries the Refund: its status says settled, failed or not yet.
    # refund.updated covers every refund; charge.refund.updated (some payment methods) and
    # refund.created (a card refund may succeed at once) carry the same object.
    "refund.created": (_refund_action, "refund", _stripe_refund),
    "refund.updated": (_refund_action, "refund", _stripe_refund),
    "charge.refund.updated": (_refund_action, "refund", _stripe_refund),
    "refund.failed": (_refund_action, "refund", _stripe_refund),
}


def stripe_envelope(*, body: dict[str, Any]) -> Envelope:
    """What is stored: ``{"id": "evt_…", "type": ..., "data": {"object": {...}}}``;
    refused (400) only without a usable id. A missing or odd type is stored
    (as ``""`` or cut to the column) and ignored by :func:`parse_stripe_event`."""
    event_type = body.get("type")
    return Envelope(provider=InboundEvent.Provider.STRIPE, event_id=check_event_id(body.get("id")),
                    event_type=event_type[:MAX_EVENT_TYPE] if isinstance(event_type, str) else "", body=body)


def parse_stripe_event(*, body: dict[str, Any]) -> ParsedEvent | Ignored:
    """A stored Stripe event: what to do, or why it is not ours (see the module's table).

    Raises a :class:`DomainError` when the event looks like ours (our metadata
    keys on the object) but cannot be used: it is stored FAILED with that reason.
    """
    event_type = body.get("type")
    mapped = STRIPE_EVENTS.get(event_type) if isinstance(event_type, str) else None
    if mapped is None:
        return Ignored("event_type_not_handled", "Kobatela does not act on this Stripe event type.")
    action, object_type, read = mapped
    data = body.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not OUR_METADATA_KEYS & _metadata(obj).keys():
        return Ignored("not_ours", "The event's object carries none of Kobatela's metadata keys "
                                   f"({', '.join(sorted(OUR_METADATA_KEYS))}).")
    if obj.get("object") != object_type:
        raise ValidationFailed("unexpected_object", f"A {event_type} event must carry a {object_type}.",
                               details={"object": [f"Expected {object_type}."]})
    if callable(action):
        action = action(obj)
        if isinstance(action, Ignored):
            return action
    return ParsedEvent(action=action, data=validate(action, read(obj)))
