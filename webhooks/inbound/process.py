"""Store, process and reprocess a parsed provider event, through the one map of action → service."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from prometheus_client import Counter

from escrow.models import EscrowDeposit
from escrow.refunds import refund_fail, refund_settle
from escrow.selectors import escrow_list_for, escrow_opened_funding_session
from escrow.services import escrow_deposit, escrow_return_payout, escrow_settle_payout
from kobatela.accounts.models import PayoutStatus
from kobatela.accounts.selectors import payee_for_psp_account
from kobatela.accounts.services import user_set_payout_status
from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.errors import BadRequest, DomainError, NotFound, Unprocessable, ValidationFailed
from payments import services as payment_services
from webhooks import signing
from webhooks.inbound.decode import decode_body, storable_headers
from webhooks.inbound.psp import parse_psp_event, psp_envelope
from webhooks.inbound.schemas import Envelope, Ignored, ParsedEvent
from webhooks.inbound.stripe import parse_stripe_event
from webhooks.models import InboundEvent

logger = logging.getLogger(__name__)

# outcome, one per delivery:
#   processed  acted on (PROCESSED)
#   ignored    signed, not ours: no Kobatela metadata, a type we do not act on (IGNORED, 200)
#   unusable   signed, looks like ours, cannot be used: schema, wrong object, no such
#              escrow/payment/session (FAILED, 200, an alert)
#   failed     usable, refused by a business rule: amount mismatch, a transition (FAILED, 200)
#   duplicate  already PROCESSED or IGNORED: nothing done
#   rejected   4xx/503, nothing stored: bad signature or timestamp, nothing storable, no secret
WEBHOOKS = Counter(
    "kobatela_webhooks_total",
    "Provider webhooks received, by provider and outcome (processed, ignored, unusable, failed, duplicate, rejected).",
    ["provider", "outcome"],
)

UNUSABLE_ALERT = "webhook_event_unusable"


# --------------------------------------------------------------------------- #
# Handlers: the one map of action → service
# --------------------------------------------------------------------------- #


def _on_funding_succeeded(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    escrows = escrow_list_for(actor).filter(pk=data["escrow_id"])
    currency = escrows.values_list("currency", flat=True).first()
    if currency is None:
        raise NotFound("escrow_not_found", "No such escrow.")
    session_id = data.get("session_id")
    # Another product on a shared Stripe account may name its own objects
    # "escrow_id": only a session Kobatela opened for this escrow funds it
    # (escrow.services.escrow_funding_session records each one it opens).
    if session_id and not escrow_opened_funding_session(data["escrow_id"], session_id):
        raise NotFound("funding_session_not_found", "No funding session opened for this escrow has this reference.",
                       details={"escrow_id": data["escrow_id"], "session_id": session_id})
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
                                                         psp_ref=data.get("psp_ref") or "",
                                                         failure_code=data.get("failure_code") or ""))


def _on_payout_refunded(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    return _payment_result(
        escrow_return_payout(
            actor=actor, payment_id=data["payment_id"], amount=data.get("amount"), currency=data.get("currency")
        )
    )


def _on_account_verified(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    payee = payee_for_psp_account(data["account"])
    if payee is None:
        raise NotFound("payee_not_found", "No account is paid at this PSP reference.", details={"account": data["account"]})
    user = user_set_payout_status(actor=actor, user_id=payee.pk, payout_status=PayoutStatus.VERIFIED,
                                  reason="psp account.verified")
    return {"user_id": user.pk, "payout_status": user.payout_status}


def _on_payout_returned(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    return _payment_result(
        escrow_return_payout(actor=actor, payment_id=data["payment_id"], amount=data.get("amount"),
                             currency=data.get("currency"), returned=True,
                             failure_code=data.get("failure_code") or data.get("reason") or "")
    )


def _refund_result(refund) -> dict[str, Any]:
    return {"refund_id": refund.pk, "refund_status": refund.status}


def _on_refund_settled(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    return _refund_result(refund_settle(actor=actor, refund_id=data["refund_id"], psp_ref=data["psp_ref"],
                                        amount=data.get("amount"), currency=data.get("currency")))


def _on_refund_failed(actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    return _refund_result(refund_fail(actor=actor, refund_id=data["refund_id"], failure_code=data["failure_code"],
                                      reason=data["reason"], psp_ref=data["psp_ref"]))


# Keyed like schemas.ACTIONS (a test keeps the two maps on the same actions): the generic
# PSP's event types; Stripe's are translated to these.
HANDLERS: dict[str, Callable[[Actor, dict[str, Any]], dict[str, Any]]] = {
    "funding.succeeded": _on_funding_succeeded,
    "payout.sent": _on_payout_sent,
    "payout.settled": _on_payout_settled,
    "payout.failed": _on_payout_failed,
    "payout.refunded": _on_payout_refunded,
    "account.verified": _on_account_verified,
    "payout.returned": _on_payout_returned,
    "refund.settled": _on_refund_settled,
    "refund.failed": _on_refund_failed,
}


def parse_stored(event: InboundEvent) -> ParsedEvent | Ignored:
    """The stored body, parsed again at every (re)processing; a DomainError when it looks ours but is unusable."""
    if event.provider == InboundEvent.Provider.STRIPE:
        return parse_stripe_event(body=event.body)
    return parse_psp_event(body=event.body)


def is_unusable(exc: DomainError) -> bool:
    """The event itself is at fault — its data fails the schema (400) or names
    no escrow, payment or session of ours (404) — rather than a rule refusing
    a usable event (409/422). The provider re-sending it, or a reprocess,
    fails the same way until someone looks: hence an alert."""
    return isinstance(exc, (BadRequest, ValidationFailed, NotFound))


# --------------------------------------------------------------------------- #
# Store, process, reprocess
# --------------------------------------------------------------------------- #


def _system_actor(provider: str) -> Actor:
    return Actor.system(f"{provider}_webhook")


def inbound_event_store(*, envelope: Envelope, headers: Mapping[str, str]) -> tuple[InboundEvent, bool]:
    """Insert the event in its own transaction, or return the row already stored
    for its (provider, id) with ``created=False``. The unique constraint decides
    between concurrent deliveries."""
    try:
        with transaction.atomic():
            event = InboundEvent.objects.create(
                provider=envelope.provider, event_id=envelope.event_id, event_type=envelope.event_type,
                headers=storable_headers(headers), body=envelope.body,
            )
            return event, True
    except IntegrityError:
        return InboundEvent.objects.get(provider=envelope.provider, event_id=envelope.event_id), False


def _raise_unusable_alert(event: InboundEvent, actor: Actor) -> None:
    error = event.result["error"]
    audit.alert_raise(
        type=UNUSABLE_ALERT, actor=actor,
        message=f"A signed {event.provider} event that looks like Kobatela's cannot be used "
                f"({event.event_type or 'no type'}, {event.event_id}): {error['code']}: {error['message']}",
        data={"provider": event.provider, "event_id": event.event_id, "event_type": event.event_type,
              "inbound_event_id": event.pk, "code": error["code"], "details": error["details"]},
    )


def _finish(event: InboundEvent, *, status: str, result: dict[str, Any], error: str, actor: Actor) -> InboundEvent:
    """Record how an attempt ended, audited; an event that becomes FAILED as
    unusable raises one alert (not again on a replay or a reprocess)."""
    result = json.loads(json.dumps(result, cls=DjangoJSONEncoder))  # Decimals, dates → JSON
    with transaction.atomic():
        current = InboundEvent.objects.select_for_update().get(pk=event.pk)
        # Never undo a PROCESSED: a concurrent delivery of the same event may have got there first.
        if current.status == InboundEvent.Status.PROCESSED:
            return current
        first_failure = status == InboundEvent.Status.FAILED and current.status != InboundEvent.Status.FAILED
        current.status, current.result, current.error = status, result, error
        current.processed_at = timezone.now() if status in InboundEvent.FINAL_STATUSES else None
        current.save(update_fields=["status", "result", "error", "processed_at"])
        audit.record(actor, f"webhook.{status.lower()}", current,
                     {"provider": current.provider, "event_id": current.event_id, "type": current.event_type,
                      "attempt": current.attempts, "result": result})
        if first_failure and result.get("unusable"):
            _raise_unusable_alert(current, actor)
    return current


def inbound_event_process(*, inbound_event_id: int) -> InboundEvent:
    """Parse the stored body and run it through its handler, once it is PROCESSED never again.

    Each attempt is counted. An event that is not ours ends IGNORED with the
    reason; a :class:`DomainError` (from the parse, the schema or a service)
    leaves it FAILED with its code and message; anything else is a bug and
    propagates, leaving the event RECEIVED/FAILED for a retry.
    """
    event = InboundEvent.objects.get(pk=inbound_event_id)
    if event.status == InboundEvent.Status.PROCESSED:
        return event
    InboundEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    event.refresh_from_db(fields=["attempts"])
    actor = _system_actor(event.provider)
    log = {"provider": event.provider, "event_id": event.event_id, "type": event.event_type}
    try:
        parsed = parse_stored(event)
        if isinstance(parsed, Ignored):
            logger.info("webhook ignored", extra={**log, "reason": parsed.code})
            status, error = InboundEvent.Status.IGNORED, f"{parsed.code}: {parsed.message}"
            result: dict[str, Any] = {"ignored": True, "reason": {"code": parsed.code, "message": parsed.message}}
        else:
            status, error = InboundEvent.Status.PROCESSED, ""
            result = {"action": parsed.action, **HANDLERS[parsed.action](actor, parsed.data)}
    except DomainError as exc:
        unusable = is_unusable(exc)
        logger.warning("webhook processing failed", extra={**log, "error": exc.code, "unusable": unusable})
        status, error = InboundEvent.Status.FAILED, f"{exc.code}: {exc.message}"
        result = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        if unusable:
            result["unusable"] = True
    return _finish(event, status=status, result=result, error=error, actor=actor)


@dataclass(frozen=True)
class Receipt:
    """What a verified delivery came to, and the webhook's answer."""

    event: InboundEvent
    duplicate: bool

    @property
    def status(self) -> str:
        """The answer's ``status``: processed, ignored or failed."""
        if self.event.status == InboundEvent.Status.PROCESSED:
            return "processed"
        return "ignored" if self.event.status == InboundEvent.Status.IGNORED else "failed"

    @property
    def outcome(self) -> str:
        """The metric's label (see WEBHOOKS)."""
        if self.duplicate:
            return "duplicate"
        if self.status == "failed" and self.event.result.get("unusable"):
            return "unusable"
        return self.status

    def response_body(self) -> dict[str, Any]:
        if self.duplicate:
            return {"duplicate": True}
        body: dict[str, Any] = {"received": True, "status": self.status}
        if self.status == "failed":
            body["error"] = (self.event.result.get("error") or {}).get("code")
        return body


def inbound_event_receive(*, envelope: Envelope, headers: Mapping[str, str]) -> Receipt:
    """Store a verified delivery and process it unless it already ended (PROCESSED or IGNORED).

    A stored event that did not end (an earlier attempt failed or crashed) is
    processed again; its stored body is what is processed, the same id
    carrying another body changes nothing.
    """
    event, created = inbound_event_store(envelope=envelope, headers=headers)
    if not created and event.status in InboundEvent.FINAL_STATUSES:
        receipt = Receipt(event=event, duplicate=True)
    else:
        receipt = Receipt(event=inbound_event_process(inbound_event_id=event.pk), duplicate=False)
    WEBHOOKS.labels(envelope.provider, receipt.outcome).inc()
    return receipt


def psp_webhook_receive(*, headers: Mapping[str, str], raw: bytes) -> Receipt:
    """The generic PSP's inbound path, from the signed bytes: verify, store, process.

    ``POST /psp/webhook`` and the sandbox PSP's own deliveries (``webhooks.sandbox``)
    both go through here. Secrets are read on every request: a secret is rotated
    by changing the environment, without a restart."""
    msg_id = signing.verify(
        headers=headers,
        body=raw,
        secrets=[os.environ.get("PSP_WEBHOOK_SECRET"), os.environ.get("PSP_WEBHOOK_SECRET_NEXT")],
        tolerance_seconds=settings.PSP_WEBHOOK_TOLERANCE_SECONDS,
    )
    return inbound_event_receive(envelope=psp_envelope(event_id=msg_id, body=decode_body(raw)), headers=headers)


def inbound_event_reprocess(inbound_event_id: int, *, actor: Actor | str | None = None) -> InboundEvent:
    """Support's retry of a stored event (admin action, ``manage.py reprocess_webhooks``):
    its stored body is parsed again, so it is processed or fails with the same reason.

    A PROCESSED event is returned unchanged; an IGNORED one is parsed again too
    (a release may have learnt to act on it). The request is audited under the
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
