"""The sandbox PSP's helpers (``PSP_PROVIDER=sandbox`` only): what a real PSP
would do on its own, on demand.

Each helper builds the event the PSP would send, signs it with the configured
``PSP_WEBHOOK_SECRET`` (Standard Webhooks) and hands the signed bytes to the
one inbound path (:func:`webhooks.inbound.process.psp_webhook_receive`):
signature check, storage as an ``InboundEvent``, processing through the same
handlers as a delivery from outside. Nothing here moves money itself.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from decimal import Decimal
from typing import Any

from escrow.models import EscrowStatus
from escrow.selectors import escrow_list_for
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, NotFound
from payments.models import PaymentStatus
from payments.selectors import payment_list_for
from webhooks import signing
from webhooks.inbound.process import Receipt, psp_webhook_receive

FAILURE_CODE_DEFAULT = "sandbox_declined"


def sandbox_enabled() -> bool:
    """The helpers, like the test clock, exist only with the sandbox PSP."""
    return clock.test_clock_enabled()


def _require_sandbox() -> None:
    if not sandbox_enabled():
        raise NotFound()  # as if the route did not exist


def _deliver(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Sign ``{"type", "data"}`` as the PSP does and receive it through the inbound path."""
    body = json.dumps({"type": event_type, "data": data}, separators=(",", ":")).encode()
    msg_id = f"sbx_evt_{uuid.uuid4().hex}"
    headers = signing.signature_headers(secrets=[os.environ.get("PSP_WEBHOOK_SECRET")], msg_id=msg_id,
                                        timestamp=int(time.time()), body=body)
    receipt: Receipt = psp_webhook_receive(headers=headers, raw=body)
    answer = {"webhook_id": msg_id, "type": event_type, **receipt.response_body()}
    return answer


def _payment(actor: Actor, payment_id: int):
    payment = payment_list_for(actor).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("payment_not_found", "No such payment.")
    if payment.status != PaymentStatus.SENT:
        raise Conflict("payment_not_sent", f"The payout is {payment.status}; only a SENT payout can settle or fail.",
                       details={"status": payment.status})
    return payment


def sandbox_payment_settle(*, actor: Actor, payment_id: int) -> dict[str, Any]:
    """The PSP reports the payout as paid: signed ``payout.settled``."""
    _require_sandbox()
    payment = _payment(actor, payment_id)
    return _deliver("payout.settled", {"payment_id": payment.pk, "psp_ref": payment.psp_ref,
                                       "amount": str(payment.amount), "currency": payment.currency})


def sandbox_payment_fail(*, actor: Actor, payment_id: int, failure_code: str = "") -> dict[str, Any]:
    """The PSP reports the payout as failed: signed ``payout.failed`` (``reason`` carries the code)."""
    _require_sandbox()
    payment = _payment(actor, payment_id)
    return _deliver("payout.failed", {"payment_id": payment.pk, "psp_ref": payment.psp_ref,
                                      "reason": failure_code or FAILURE_CODE_DEFAULT,
                                      "failure_code": failure_code or FAILURE_CODE_DEFAULT})


def sandbox_escrow_fund(*, actor: Actor, escrow_id: int) -> dict[str, Any]:
    """The PSP reports the client's payment of what remains to fund: signed ``funding.succeeded``."""
    _require_sandbox()
    escrow = escrow_list_for(actor).filter(pk=escrow_id).first()
    if escrow is None:
        raise NotFound("escrow_not_found", "No such escrow.")
    remaining: Decimal = escrow.amount_total - escrow.amount_funded
    if escrow.status != EscrowStatus.DRAFT or remaining <= 0:
        raise Conflict("escrow_not_fundable", f"The escrow is {escrow.status} with nothing left to fund.",
                       details={"status": escrow.status, "remaining": str(max(remaining, Decimal("0")))})
    return _deliver("funding.succeeded", {"escrow_id": escrow.pk, "psp_ref": f"sbx_pay_{uuid.uuid4().hex[:16]}",
                                          "amount": str(remaining), "currency": escrow.currency})


def sandbox_clock_advance(*, hours: int) -> dict[str, Any]:
    """Move the platform's test clock and run the registered jobs (``kobatela.core.clock``)."""
    _require_sandbox()
    moved_to, jobs = clock.advance(hours=hours)
    return {"now": moved_to, "offset_hours": clock.offset().total_seconds() / 3600, "jobs": jobs}
