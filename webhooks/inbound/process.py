"""Store, process and reprocess a parsed provider event, through the one map of action → service."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client import Counter

from escrow.models import EscrowDeposit
from escrow.selectors import escrow_list_for
from escrow.services import escrow_deposit, escrow_return_payout, escrow_settle_payout
from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.errors import DomainError, NotFound, Unprocessable
from payments import services as payment_services
from webhooks.inbound.decode import storable_headers
from webhooks.inbound.psp import parse_psp_event
from webhooks.inbound.schemas import ParsedEvent
from webhooks.inbound.stripe import parse_stripe_event
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
        escrow_settle_payout(
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
        escrow_return_payout(
            actor=actor, payment_id=data["payment_id"], amount=data.get("amount"), currency=data.get("currency")
        )
    )


# Keyed like schemas.ACTIONS: the generic PSP's event types (Stripe's are translated to these).
HANDLERS: dict[str, Callable[[Actor, dict[str, Any]], dict[str, Any]]] = {
    "funding.succeeded": _on_funding_succeeded,
    "payout.sent": _on_payout_sent,
    "payout.settled": _on_payout_settled,
    "payout.failed": _on_payout_failed,
    "payout.refunded": _on_payout_refunded,
}


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
            result = {"action": parsed.action, **HANDLERS[parsed.action](actor, parsed.data)}
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
