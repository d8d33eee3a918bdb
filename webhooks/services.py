"""Provider webhooks, once their signature is verified: parse, store, process, reprocess.

How one delivery goes (STYLE habit 6, dj-stripe's ``WebhookEventTrigger``)::

    view: signing.verify(raw body)           → 400/401/503, nothing stored
          decode_body + parse_*_event         → 400, nothing stored
          inbound_event_receive(parsed)
              inbound_event_store             → its own short transaction; unique (provider, event id)
              already PROCESSED?              → {"duplicate": true}, nothing changes
              inbound_event_process           → HANDLERS[action](data) calls the money services
              PROCESSED (result) / FAILED (error code and message)

A failure of the *business* kind (a :class:`DomainError`: unknown payment,
amount mismatch, a transition the payment cannot make…) is recorded on the
stored event and answered **200**: the provider re-sending the same event
would fail the same way for days, so support reprocesses it once the cause is
fixed (admin action or ``manage.py reprocess_webhooks``). A crash (a bug, the
database gone) is not caught: the view answers 5xx, the row stays RECEIVED
and the provider's retry processes it again.

Processing is idempotent, so a redelivery, a reprocess or two concurrent
deliveries of one event cannot move money twice: deposits carry the key
``psp:<psp_ref>`` (unique per account), and the payment services return
early when the payment is already in the reported state.

The event schemas below are DRF serializers. They live here rather than in
``api.py`` because a stored event is validated again each time it is
(re)processed, by the admin action and the management command too, which have
no view.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client import Counter
from rest_framework import serializers

from escrow.models import EscrowDeposit
from escrow.selectors import escrow_list_for
from escrow.services import escrow_deposit
from kobatela.accounts.actor import Actor
from kobatela.audit import services as audit
from kobatela.core.errors import BadRequest, DomainError, NotFound, Unprocessable, ValidationFailed
from kobatela.core.money import AmountField, CurrencyField
from payments import services as payment_services
from payments.psp.base import from_minor_units
from webhooks.models import InboundEvent

logger = logging.getLogger(__name__)

# outcome: "accepted" (processed or ignored), "failed" (stored, processing refused by a
# business rule, answered 200), "duplicate" (already processed), "rejected" (4xx/503:
# bad signature, bad input, no secret configured).
WEBHOOKS = Counter(
    "kobatela_webhooks_total",
    "Provider webhooks received, by provider and outcome (accepted, failed, duplicate, rejected).",
    ["provider", "outcome"],
)

# Same bound as ids in URLs (kobatela.core.viewsets.ID_PATTERN): an absurd id is
# refused as input, never a database overflow.
MAX_ID = 10**18 - 1
# The deposit's idempotency key is "psp:<psp_ref>" in a 255-character column.
MAX_PSP_REF = 250
MAX_EVENT_ID = 255  # InboundEvent.event_id
MAX_EVENT_TYPE = 100  # InboundEvent.event_type
# Provider events are shallow (Stripe's are under 10 levels); deeper is refused
# before it can exhaust the stack while being converted or stored.
MAX_DEPTH = 64

# Headers kept off the stored row: the signatures (STYLE: store without them)
# and anything that could carry a credential.
_UNSTORED_HEADERS = frozenset({"webhook-signature", "stripe-signature", "authorization", "cookie", "x-api-key"})


# --------------------------------------------------------------------------- #
# Decoding the body
# --------------------------------------------------------------------------- #


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON value")


def _storable(value: Any, depth: int = 0) -> Any:
    """The parsed body as it is stored and processed.

    JSON numbers with a fraction were parsed as ``Decimal`` and are kept as
    their exact decimal *string*: a JSON column gives numbers back as floats,
    so a reprocess would otherwise read another amount than the first attempt
    (``AmountField`` accepts strings). NUL characters are refused because
    PostgreSQL's ``jsonb`` cannot store them.
    """
    if depth > MAX_DEPTH:
        raise BadRequest("invalid_event", "The event is nested too deeply.")
    if isinstance(value, dict):
        return {_storable(k, depth + 1): _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v, depth + 1) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str) and "\x00" in value:
        raise BadRequest("invalid_event", "The event contains a NUL character.")
    return value


def decode_body(raw: bytes) -> dict[str, Any]:
    """Parse the verified raw body: 400 ``malformed_json`` or ``invalid_event`` (not an object)."""
    try:
        parsed = json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest("malformed_json", "The webhook body is not valid JSON.") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("invalid_event", "The webhook body must be a JSON object.")
    return _storable(parsed)


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in _UNSTORED_HEADERS}


# --------------------------------------------------------------------------- #
# Event schemas: what each action needs, whichever provider reports it
# --------------------------------------------------------------------------- #


def _id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class FundingSucceededData(serializers.Serializer):
    psp_ref = serializers.CharField(max_length=MAX_PSP_REF)
    escrow_id = _id_field()
    amount = AmountField()
    currency = CurrencyField()


class PayoutData(serializers.Serializer):
    """payout.sent / payout.failed: amount and currency are optional (not checked)."""

    payment_id = _id_field()
    psp_ref = serializers.CharField(max_length=MAX_PSP_REF, required=False, allow_blank=True, default="")
    amount = AmountField(required=False)
    currency = CurrencyField(required=False)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class PayoutSettledData(PayoutData):
    """The money has left: the PSP's amount and currency must be the payment's."""

    amount = AmountField()
    currency = CurrencyField()


# payout.refunded: amount/currency optional; when given they must be the payment's.
PayoutRefundedData = PayoutData


# --------------------------------------------------------------------------- #
# Handlers: the one map of action → service
# --------------------------------------------------------------------------- #


def _on_funding_succeeded(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    currency = escrow_list_for(actor).filter(pk=data["escrow_id"]).values_list("currency", flat=True).first()
    if currency is None:
        raise NotFound("escrow_not_found", "No such escrow.")
    if currency != data["currency"]:
        raise Unprocessable(
            "funding_currency_mismatch",
            "The PSP reports a deposit in another currency than the escrow's.",
            details={"expected": currency, "reported": data["currency"]},
        )
    escrow = escrow_deposit(
        actor=actor,
        escrow_id=data["escrow_id"],
        amount=data["amount"],
        # The PSP's reference makes a second notification of the same payment,
        # under another webhook id or from another provider, a no-op.
        idempotency_key=f"psp:{data['psp_ref']}",
        source=EscrowDeposit.Source.PSP,
        psp_ref=data["psp_ref"],
    )
    return {"escrow_id": escrow.pk, "escrow_status": escrow.status, "amount_funded": str(escrow.amount_funded)}


def _payment_result(payment) -> dict[str, Any]:
    return {"payment_id": payment.pk, "payment_status": payment.status}


def _on_payout_sent(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    return _payment_result(
        payment_services.payment_mark_sent(actor=actor, payment_id=data["payment_id"], psp_ref=data["psp_ref"])
    )


def _on_payout_settled(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    return _payment_result(
        payment_services.payment_settle(
            actor=actor, payment_id=data["payment_id"], psp_ref=data["psp_ref"],
            amount=data["amount"], currency=data["currency"],
        )
    )


def _on_payout_failed(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    reason = data["reason"] or "The PSP reported the payout as failed."
    return _payment_result(payment_services.payment_fail(actor=actor, payment_id=data["payment_id"], reason=reason,
                                                         psp_ref=data.get("psp_ref") or ""))


def _on_payout_refunded(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    return _payment_result(
        payment_services.payment_refund(
            actor=actor, payment_id=data["payment_id"], amount=data.get("amount"), currency=data.get("currency")
        )
    )


@dataclass(frozen=True)
class Action:
    schema: type[serializers.Serializer]
    handler: Callable[[Actor, dict[str, Any]], dict[str, Any]]


# The generic PSP's event types; Stripe's are translated to these (STRIPE_EVENTS).
HANDLERS: dict[str, Action] = {
    "funding.succeeded": Action(FundingSucceededData, _on_funding_succeeded),
    "payout.sent": Action(PayoutData, _on_payout_sent),
    "payout.settled": Action(PayoutSettledData, _on_payout_settled),
    "payout.failed": Action(PayoutData, _on_payout_failed),
    "payout.refunded": Action(PayoutRefundedData, _on_payout_refunded),
}


def _validate(action: str, data: dict[str, Any]) -> dict[str, Any]:
    serializer = HANDLERS[action].schema(data=data)
    if not serializer.is_valid():
        details = {key: [str(m) for m in value] if isinstance(value, list) else value
                   for key, value in serializer.errors.items()}
        raise ValidationFailed("invalid_event_data", "The event data has invalid fields.", details=details)
    return dict(serializer.validated_data)


# --------------------------------------------------------------------------- #
# Parsing per provider
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ParsedEvent:
    provider: str
    event_id: str
    event_type: str  # as the provider names it (stored)
    action: str | None  # key of HANDLERS; None: an event we do not act on (stored as ignored)
    data: dict[str, Any]  # validated by the action's schema
    body: dict[str, Any]  # as stored


def _check_event_id(event_id: Any) -> str:
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_EVENT_ID:
        raise BadRequest("invalid_event", f"The event id must be a string of 1 to {MAX_EVENT_ID} characters.")
    return event_id


def parse_psp_event(*, event_id: str, body: dict[str, Any]) -> ParsedEvent:
    """The generic PSP: ``{"type": ..., "data": {...}}``; the id is the ``webhook-id`` header.

    Unknown types are refused (400, not stored): the generic PSP sends only the
    types of the contract, so another one is a misconfiguration to see at once.
    """
    event_id = _check_event_id(event_id)
    event_type, data = body.get("type"), body.get("data")
    if not isinstance(event_type, str) or not isinstance(data, dict):
        raise BadRequest("invalid_event", 'The event must have a string "type" and an object "data".')
    if event_type not in HANDLERS:
        raise BadRequest("unknown_event_type", "This event type is not handled.",
                         details={"type": event_type[:MAX_EVENT_TYPE], "handled": sorted(HANDLERS)})
    return ParsedEvent(provider=InboundEvent.Provider.PSP, event_id=event_id, event_type=event_type,
                       action=event_type, data=_validate(event_type, data), body=body)


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
    event_id = _check_event_id(body.get("id"))
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
                       action=action, data=_validate(action, read(obj)), body=body)


def parse_stored(event: InboundEvent) -> ParsedEvent:
    if event.provider == InboundEvent.Provider.STRIPE:
        return parse_stripe_event(body=event.body)
    return parse_psp_event(event_id=event.event_id, body=event.body)


# --------------------------------------------------------------------------- #
# Store, process, reprocess
# --------------------------------------------------------------------------- #


def _system_actor(provider: str) -> Actor:
    return Actor.system(f"{provider}_webhook")


def inbound_event_store(*, parsed: ParsedEvent, headers: Mapping[str, str]) -> tuple[InboundEvent, bool]:
    """Insert the event in its own transaction, or return the row already stored
    for its (provider, id) with ``created=False``. The unique constraint decides
    between concurrent deliveries."""
    try:
        with transaction.atomic():
            event = InboundEvent.objects.create(
                provider=parsed.provider, event_id=parsed.event_id, event_type=parsed.event_type,
                headers=storable_headers(headers), body=parsed.body,
            )
            return event, True
    except IntegrityError:
        return InboundEvent.objects.get(provider=parsed.provider, event_id=parsed.event_id), False


def _finish(event: InboundEvent, *, status: str, result: dict[str, Any], error: str, actor: Actor) -> InboundEvent:
    result = json.loads(json.dumps(result, cls=DjangoJSONEncoder))  # Decimals, dates → JSON
    with transaction.atomic():
        # Never undo a PROCESSED: a concurrent delivery of the same event may have got there first.
        updated = (
            InboundEvent.objects.filter(pk=event.pk)
            .exclude(status=InboundEvent.Status.PROCESSED)
            .update(status=status, result=result, error=error,
                    processed_at=timezone.now() if status == InboundEvent.Status.PROCESSED else None)
        )
        event.refresh_from_db()
        if updated:
            audit.record(actor, f"webhook.{status.lower()}", event,
                         {"provider": event.provider, "event_id": event.event_id, "type": event.event_type,
                          "attempt": event.attempts, "result": result})
    return event


def inbound_event_process(*, inbound_event_id: int) -> InboundEvent:
    """Run a stored event through its handler, once it is PROCESSED never again.

    Each attempt is counted. A :class:`DomainError` (from the schema or a
    service) leaves the event FAILED with its code and message; anything else
    is a bug and propagates, leaving the event RECEIVED/FAILED for a retry.
    """
    event = InboundEvent.objects.get(pk=inbound_event_id)
    if event.status == InboundEvent.Status.PROCESSED:
        return event
    InboundEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    event.refresh_from_db(fields=["attempts"])
    actor = _system_actor(event.provider)
    try:
        parsed = parse_stored(event)
        if parsed.action is None:
            result: dict[str, Any] = {"ignored": True}
        else:
            result = {"action": parsed.action, **HANDLERS[parsed.action].handler(actor, parsed.data)}
    except DomainError as exc:
        logger.warning("webhook processing failed", extra={
            "provider": event.provider, "event_id": event.event_id, "type": event.event_type, "error": exc.code})
        return _finish(
            event, status=InboundEvent.Status.FAILED,
            result={"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
            error=f"{exc.code}: {exc.message}", actor=actor,
        )
    return _finish(event, status=InboundEvent.Status.PROCESSED, result=result, error="", actor=actor)


@dataclass(frozen=True)
class Receipt:
    """What a verified delivery came to, and the webhook's answer."""

    event: InboundEvent
    duplicate: bool

    @property
    def outcome(self) -> str:
        if self.duplicate:
            return "duplicate"
        if self.event.status == InboundEvent.Status.PROCESSED:
            return "ignored" if self.event.result.get("ignored") else "processed"
        return "failed"

    def response_body(self) -> dict[str, Any]:
        if self.duplicate:
            return {"duplicate": True}
        body: dict[str, Any] = {"received": True, "status": self.outcome}
        if self.outcome == "failed":
            body["error"] = (self.event.result.get("error") or {}).get("code")
        return body


def inbound_event_receive(*, parsed: ParsedEvent, headers: Mapping[str, str]) -> Receipt:
    """Store a verified, parsed delivery and process it unless it was already processed.

    A stored event that is not PROCESSED (an earlier attempt failed or
    crashed) is processed again; its stored body is what is processed, the
    same id carrying another body changes nothing.
    """
    event, created = inbound_event_store(parsed=parsed, headers=headers)
    if not created and event.status == InboundEvent.Status.PROCESSED:
        WEBHOOKS.labels(parsed.provider, "duplicate").inc()
        return Receipt(event=event, duplicate=True)
    event = inbound_event_process(inbound_event_id=event.pk)
    receipt = Receipt(event=event, duplicate=False)
    WEBHOOKS.labels(parsed.provider, "failed" if receipt.outcome == "failed" else "accepted").inc()
    return receipt


def inbound_event_reprocess(inbound_event_id: int, *, actor: Actor | str | None = None) -> InboundEvent:
    """Support's retry of a stored event (admin action, ``manage.py reprocess_webhooks``).

    A PROCESSED event is returned unchanged. The request is audited under the
    person or job asking; the services still act as the provider's system actor,
    since the provider's event is what moves the money.
    """
    event = InboundEvent.objects.filter(pk=inbound_event_id).first()
    if event is None:
        raise NotFound("inbound_event_not_found", "No such inbound event.")
    if event.status == InboundEvent.Status.PROCESSED:
        return event
    if actor is not None:
        audit.record(actor, "webhook.reprocess_requested", event,
                     {"provider": event.provider, "event_id": event.event_id, "status": event.status})
    return inbound_event_process(inbound_event_id=event.pk)


def failed_inbound_event_ids() -> list[int]:
    return list(InboundEvent.objects.filter(status=InboundEvent.Status.FAILED).order_by("pk").values_list("pk", flat=True))
