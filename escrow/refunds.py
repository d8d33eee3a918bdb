"""Refunds: money held by an escrow goes back to the client through the PSP.

A refund is booked when it is created, in the escrow's locked transaction
(``escrow:<id>`` → ``psp:clearing``, ``amount_refunded`` grows): that is the
running cap — never more than the escrow holds unreleased and unpromised
(``escrow_available_balance``), however many refunds race. The PSP call (a
refund of the funding charge, key ``refund-<id>``) happens after commit,
outside any lock; ``refund.settled`` ends it, ``refund.failed`` books the
money back into the escrow. An escrow with nothing left ends
(``escrow_close_if_done``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from escrow.models import Dispute, EscrowAgreement, EscrowDeposit, EscrowStatus, Refund, RefundStatus
from escrow.selectors import escrow_lock, escrow_open_dispute, refund_escrow_id, refund_lock
from escrow.services import _event, _status_refusal, escrow_close_if_done
from kobatela.audit import services as audit
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, NotFound, Unprocessable
from kobatela.core.queue import enqueue_on_commit
from kobatela.core.state import transition
from kobatela.core.transactions import require_transaction, service_transaction
from kobatela.events import services as events
from payments import ledger
from payments.models import LedgerEntry
from payments.psp import get_provider
from payments.psp.base import PspError, RefundRequest
from payments.selectors import escrow_available_balance

logger = logging.getLogger(__name__)

REFUNDABLE_STATUSES = (EscrowStatus.DRAFT, EscrowStatus.FUNDED, EscrowStatus.RELEASABLE)


def escrow_refund_refusal(escrow: EscrowAgreement, *, disputed: bool, amount: Decimal | None = None) -> Conflict | None:
    """Why the client cannot be refunded now (None: it can). Used by the service
    (under the escrow lock) and by ``allowed_actions`` (a read)."""
    refusal = _status_refusal(escrow, REFUNDABLE_STATUSES, "there is nothing to refund")
    if refusal is not None:
        return refusal
    if disputed:
        return Conflict("escrow_disputed", "A dispute is open: its resolution decides the refund.")
    available = escrow_available_balance(escrow)
    if available <= 0:
        return Conflict("nothing_to_refund", "The escrow holds nothing that is not released or promised.")
    if amount is not None and amount > available:
        return Conflict("refund_exceeds_refundable", "The refund is more than the escrow holds unreleased.",
                        details={"refundable": str(available), "amount": str(amount)})
    return None


def escrow_refund(*, actor: Actor, escrow_id: int, reason: str, amount: Decimal | None = None) -> Refund:
    """``POST /escrows/{id}/refund``: refund ``amount`` (all that is refundable when
    absent) to the client; refused while a dispute is open."""
    with service_transaction():
        escrow = escrow_lock(escrow_id, actor)
        refusal = escrow_refund_refusal(escrow, disputed=escrow_open_dispute(escrow.pk) is not None, amount=amount)
        if refusal is not None:
            raise refusal
        return refund_create(actor=actor, escrow=escrow, amount=amount or escrow_available_balance(escrow),
                             reason=reason)


def _funding_ref(escrow: EscrowAgreement) -> str:
    """The funding charge a refund draws on: the escrow's largest PSP deposit ('' when funded through the API)."""
    return (EscrowDeposit.objects.filter(escrow=escrow).exclude(psp_ref="").order_by("-amount", "pk")
            .values_list("psp_ref", flat=True).first() or "")


def refund_create(*, actor: Actor | str, escrow: EscrowAgreement, amount: Decimal, reason: str,
                  dispute: Dispute | None = None) -> Refund:
    """Book a refund of a locked escrow inside the caller's transaction; it is sent after commit."""
    require_transaction("refund_create (after the escrow lock)")
    available = escrow_available_balance(escrow)
    if amount <= 0 or amount > available:
        raise Conflict("refund_exceeds_refundable", "The refund is more than the escrow holds unreleased.",
                       details={"refundable": str(available), "amount": str(amount)})
    refund = Refund.objects.create(escrow=escrow, dispute=dispute, amount=amount, currency=escrow.currency,
                                   reason=reason, funding_ref=_funding_ref(escrow), created_by=Actor.label_of(actor))
    ledger.transfer(movement=f"refund:{refund.pk}", kind=LedgerEntry.Kind.ESCROW_REFUND, currency=escrow.currency,
                    amount=amount, source=ledger.escrow_account(escrow.pk), target=ledger.PSP_CLEARING)
    escrow.amount_refunded += amount
    escrow.save(update_fields=["amount_refunded", "updated_at"])
    _event(escrow, "refund_created", actor, {"refund_id": refund.pk, "amount": amount, "reason": reason})
    events.emit(account_id=escrow.client_id, type="refund.created", resource=refund)
    audit.record(actor, "refund.created", refund, {"escrow_id": escrow.pk, "amount": amount, "reason": reason,
                                                   "dispute_id": dispute.pk if dispute else None})
    enqueue_on_commit("escrow.tasks.send_refund", refund.pk)
    return refund


def refund_send(*, refund_id: int, actor: Actor | str) -> Refund:
    """Send a PENDING refund to the PSP; safe to run any number of times (key ``refund-<id>``).
    A transient PSP error leaves it PENDING for the sweeper; a refusal fails it (booked back)."""
    with service_transaction():
        refund = refund_lock(refund_id)
        if refund.status != RefundStatus.PENDING:
            return refund
        refund.attempts += 1
        refund.save(update_fields=["attempts", "updated_at"])
        request = RefundRequest(refund_id=refund.pk, amount=refund.amount, currency=refund.currency,
                                funding_ref=refund.funding_ref,
                                metadata={"refund_id": refund.pk, "escrow_id": refund.escrow_id})
    try:
        result = get_provider().create_refund(request)
    except PspError as exc:
        if exc.retryable:
            Refund.objects.filter(pk=refund_id).update(last_error=f"{type(exc).__name__}: {exc}"[:500])
            logger.warning("refund not sent, left to the sweeper", extra={"refund_id": refund_id, "error": exc.code})
            return Refund.objects.get(pk=refund_id)
        return refund_fail(actor=actor, refund_id=refund_id, failure_code=exc.psp_code or exc.code,
                           reason=str(exc))
    with service_transaction():
        refund = refund_lock(refund_id)
        if refund.status == RefundStatus.PENDING:
            transition(refund, RefundStatus.SENT)
            refund.psp_ref = result.psp_ref
            refund.last_error = ""
            refund.save(update_fields=["status", "psp_ref", "last_error", "updated_at"])
            audit.record(actor, "refund.sent", refund, {"psp_ref": result.psp_ref, "attempt": refund.attempts})
    return refund


def _locked_escrow_and_refund(refund_id: int) -> tuple[EscrowAgreement, Refund]:
    escrow_id = refund_escrow_id(refund_id)
    if escrow_id is None:
        raise NotFound("refund_not_found", "No such refund.")
    return escrow_lock(escrow_id), refund_lock(refund_id)


def _check_psp_ref(refund: Refund, psp_ref: str) -> None:
    """A report naming another PSP refund than the one ours was sent as (someone else's
    refund carrying our metadata) moves nothing. Before the send is recorded, any counts."""
    if psp_ref and refund.psp_ref and psp_ref != refund.psp_ref:
        raise Unprocessable("refund_psp_ref_mismatch", "The PSP reports another refund than the one this refund is.",
                            details={"expected": refund.psp_ref, "reported": psp_ref})


def refund_settle(*, actor: Actor | str, refund_id: int, psp_ref: str = "", amount: Decimal | None = None,
                  currency: str | None = None) -> Refund:
    """``refund.settled``: the client has the money. A repeated report changes nothing."""
    with service_transaction():
        escrow, refund = _locked_escrow_and_refund(refund_id)
        if refund.status == RefundStatus.SETTLED:
            return refund
        _check_psp_ref(refund, psp_ref)
        if (amount is not None and amount != refund.amount) or (currency is not None and currency != refund.currency):
            raise Unprocessable("refund_amount_mismatch", "The PSP reports another amount or currency for this refund.",
                                details={"expected": f"{refund.amount} {refund.currency}",
                                         "reported": f"{amount} {currency}"})
        transition(refund, RefundStatus.SETTLED)
        refund.psp_ref = psp_ref or refund.psp_ref
        refund.settled_at = timezone.now()
        refund.save(update_fields=["status", "psp_ref", "settled_at", "updated_at"])
        _event(escrow, "refund_settled", actor, {"refund_id": refund.pk, "amount": refund.amount})
        events.emit(account_id=escrow.client_id, type="refund.settled", resource=refund)
        audit.record(actor, "refund.settled", refund, {"psp_ref": refund.psp_ref, "amount": refund.amount})
        escrow_close_if_done(actor=actor, escrow=escrow)
    return refund


def refund_fail(*, actor: Actor | str, refund_id: int, failure_code: str = "", reason: str = "",
                psp_ref: str = "") -> Refund:
    """``refund.failed`` (or the PSP refused the request): the money is booked back into
    the escrow, refundable again; an Alert is raised. A repeated report changes nothing."""
    with service_transaction():
        escrow, refund = _locked_escrow_and_refund(refund_id)
        if refund.status == RefundStatus.FAILED:
            return refund
        _check_psp_ref(refund, psp_ref)
        transition(refund, RefundStatus.FAILED)  # a SETTLED refund cannot fail: 409 refund_is_settled
        refund.psp_ref = refund.psp_ref or psp_ref
        refund.failure_code = (failure_code or "refund_failed")[:64]
        refund.last_error = (reason or "The PSP reported the refund failed.")[:500]
        refund.save(update_fields=["status", "psp_ref", "failure_code", "last_error", "updated_at"])
        ledger.transfer(movement=f"refund_failed:{refund.pk}", kind=LedgerEntry.Kind.ESCROW_REFUND,
                        currency=refund.currency, amount=refund.amount, source=ledger.PSP_CLEARING,
                        target=ledger.escrow_account(escrow.pk))
        escrow.amount_refunded -= refund.amount
        escrow.save(update_fields=["amount_refunded", "updated_at"])
        _event(escrow, "refund_failed", actor, {"refund_id": refund.pk, "failure_code": refund.failure_code})
        audit.alert_raise(type="refund_failed", actor=actor,
                          message=f"Refund #{refund.pk} of escrow #{escrow.pk} failed ({refund.failure_code}).",
                          data={"refund_id": refund.pk, "escrow_id": escrow.pk, "failure_code": refund.failure_code})
        events.emit(account_id=escrow.client_id, type="refund.failed", resource=refund,
                    context={"failure_code": refund.failure_code})
        audit.record(actor, "refund.failed", refund, {"failure_code": refund.failure_code, "amount": refund.amount})
    return refund


def refund_retry(*, actor: Actor, refund_id: int) -> Refund:
    """Support's retry of a FAILED refund (admin): a new refund of the same amount, as
    a new PSP request, if the escrow still holds it."""
    with service_transaction():
        escrow, refund = _locked_escrow_and_refund(refund_id)
        if refund.status != RefundStatus.FAILED:
            raise Conflict(f"refund_is_{refund.status.lower()}", f"The refund is {refund.status}; only a failed one is retried.")
        return refund_create(actor=actor, escrow=escrow, amount=refund.amount, dispute=refund.dispute,
                             reason=f"retry of refund #{refund.pk}: {refund.reason}"[:2000])


def refunds_sweep(*, pending_grace_seconds: int = 120) -> int:
    """The beat job's body: PENDING refunds whose message was lost or whose PSP call failed
    transiently (older than a grace period, so a refund being sent now is left to its task)."""
    actor = Actor.system("refund_sweeper")
    since = clock.now() - timedelta(seconds=pending_grace_seconds)
    due = list(Refund.objects.filter(status=RefundStatus.PENDING, created_at__lte=since).order_by("pk")
               .values_list("pk", flat=True)[:500])
    for refund_id in due:
        refund_send(refund_id=refund_id, actor=actor)
    return len(due)
