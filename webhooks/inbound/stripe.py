"""Stripe's events, translated to our actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kobatela.core.errors import BadRequest, ValidationFailed
from kobatela.core.money import from_minor_units
from webhooks.inbound.schemas import MAX_EVENT_TYPE, ParsedEvent, check_event_id, validate
from webhooks.models import InboundEvent


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
    return {"psp_ref": obj.get("id"), "escrow_id": _metadata(obj).get("escrow_id"), **_stripe_money(obj, amount_key)}


def _stripe_transfer_created(obj: dict[str, Any]) -> dict[str, Any]:
    # The Transfer is our payout (psp_ref = tr_…, see payments.psp.stripe_adapter).
    return {"payment_id": _metadata(obj).get("payment_id"), "psp_ref": obj.get("id")}


def _stripe_payout(obj: dict[str, Any]) -> dict[str, Any]:
    # A Payout (po_…) is not the Transfer the payment references: its id is
    # left out so the payment keeps the transfer id that reconciliation reads.
    data = {"payment_id": _metadata(obj).get("payment_id"), **_stripe_money(obj, "amount")}
    reason = obj.get("failure_message") or obj.get("failure_code")
    if isinstance(reason, str):
        data["reason"] = reason[:500]
    return data


def _stripe_transfer_reversed(obj: dict[str, Any]) -> dict[str, Any]:
    # What was reversed must be the whole payout: a partial reversal fails the
    # amount check and waits for support instead of refunding everything.
    return {"payment_id": _metadata(obj).get("payment_id"), **_stripe_money(obj, "amount_reversed")}


# Stripe type → (action, how to read the action's data from the event's object).
STRIPE_EVENTS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "payment_intent.succeeded": ("funding.succeeded", _stripe_funding),
    "transfer.created": ("payout.sent", _stripe_transfer_created),
    "payout.paid": ("payout.settled", _stripe_payout),
    "payout.failed": ("payout.failed", _stripe_payout),
    "transfer.reversed": ("payout.refunded", _stripe_transfer_reversed),
}


def parse_stripe_event(*, body: dict[str, Any]) -> ParsedEvent:
    """A Stripe event: ``{"id": "evt_…", "type": ..., "data": {"object": {...}}}``.

    Unlike the generic PSP, types we do not act on are accepted and stored as
    ignored: Stripe sends many types to an endpoint and retries a 4xx for days.
    """
    event_id = check_event_id(body.get("id"))
    event_type = body.get("type")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_EVENT_TYPE:
        raise BadRequest("invalid_event", 'The event must have a string "type".')
    mapped = STRIPE_EVENTS.get(event_type)
    if mapped is None:
        return ParsedEvent(provider=InboundEvent.Provider.STRIPE, event_id=event_id, event_type=event_type,
                           action=None, data={}, body=body)
    action, read = mapped
    obj = body.get("data", {}).get("object") if isinstance(body.get("data"), dict) else None
    if not isinstance(obj, dict):
        raise BadRequest("invalid_event", 'The event must have an object "data.object".')
    return ParsedEvent(provider=InboundEvent.Provider.STRIPE, event_id=event_id, event_type=event_type,
                       action=action, data=validate(action, read(obj)), body=body)
