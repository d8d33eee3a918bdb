"""Payouts: created from a locked escrow, sent through the PSP, settled by its
signed webhook. Every state change is audited.

These are the payment-level steps only. What a payout means for its escrow
(a milestone PAID, the escrow RELEASED) is the escrow's: ``escrow.services``
locks the escrow, calls :func:`payment_settle` or :func:`payment_refund` in
its own transaction, and applies the rest. This module never imports escrow.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kobatela.accounts.models import User
from kobatela.audit import services as audit
from kobatela.core import clock
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, Unprocessable
from kobatela.core.queue import enqueue_on_commit
from kobatela.core.state import transition
from kobatela.core.transactions import require_transaction, service_transaction
from kobatela.events import services as events
from payments import ledger
from payments.holds import payout_hold_reason
from payments.models import LedgerEntry, Payment, PaymentStatus
from payments.payees import payee_record_payout_outcome, payout_block_reason
from payments.psp import get_provider
from payments.psp.base import PayoutRequest, PspError
from payments.selectors import escrow_available_balance, payment_lock

logger = logging.getLogger(__name__)


def payment_create_payout(*, actor: Actor | str, escrow, amount: Decimal, destination: str, reason: str,
                          milestone=None, data: dict | None = None, payee=None, scheduled_for=None) -> Payment:
    """A payout from a locked escrow, inside the caller's transaction; it leaves after commit
    — or, given ``scheduled_for`` (an inspection window), stays SCHEDULED until
    ``payment_release_scheduled`` lets it go; a payout to a payee not verified waits
    with its ``blocked_reason``.

    Never more than the escrow holds unpromised: milestone payouts and payee
    spends draw on the same funds (409 ``insufficient_escrow_funds``). A
    payout to a ``payee`` not verified waits (``payments.payees``).
    """
    available = escrow_available_balance(escrow)
    if amount > available:
        raise Conflict("insufficient_escrow_funds", "The escrow does not hold this much that is not already promised.",
                       details={"available": str(available), "amount": str(amount)})
    payment = Payment.objects.create(
        owner_id=escrow.client_id, escrow=escrow, milestone=milestone, amount=amount,
        currency=escrow.currency, destination=destination, payee=payee,
        blocked_reason=payout_block_reason(payee.payout_status if payee is not None else None),
        status=PaymentStatus.SCHEDULED if scheduled_for else PaymentStatus.PENDING, scheduled_for=scheduled_for,
    )
    audit.record(actor, "payment.created", payment,
                 {"escrow_id": escrow.pk, "amount": payment.amount, "reason": reason,
                  **({"blocked_reason": payment.blocked_reason} if payment.blocked_reason else {}), **(data or {}),
                  **({"scheduled_for": scheduled_for} if scheduled_for else {})})
    if scheduled_for:
        events.emit(account_id=payment.owner_id, type="payment.scheduled", resource=payment)
    elif not payment.blocked_reason:
        enqueue_on_commit("payments.tasks.execute_payout", payment.pk)
    return payment


def payment_release_scheduled(*, actor: Actor | str, payment_id: int) -> bool:
    """A SCHEDULED payout whose time has come leaves (PENDING, sent after commit),
    unless :func:`payout_hold_reason` holds it (a dispute opened in time). Runs in the
    caller's transaction, after the escrow's lock. Returns whether it was released."""
    require_transaction("payment_release_scheduled (after the escrow lock)")
    payment = payment_lock(payment_id)
    if payment.status != PaymentStatus.SCHEDULED or payment.scheduled_for > clock.now():
        return False
    hold = payout_hold_reason(payment)
    if hold:
        return False
    transition(payment, PaymentStatus.PENDING)
    payment.save(update_fields=["status", "updated_at"])
    audit.record(actor, "payment.released", payment, {"scheduled_for": payment.scheduled_for})
    enqueue_on_commit("payments.tasks.execute_payout", payment.pk)
    return True


def payment_cancel(*, actor: Actor | str, payment_id: int, reason: str) -> Payment:
    """A payout that never left (SCHEDULED, FAILED, RETURNED) is cancelled: its money is
    no longer promised to it. Runs in the caller's transaction (a dispute resolution)."""
    require_transaction("payment_cancel (after the escrow lock)")
    payment = payment_lock(payment_id)
    transition(payment, PaymentStatus.CANCELLED)
    payment.save(update_fields=["status", "updated_at"])
    audit.record(actor, "payment.cancelled", payment, {"reason": reason, "amount": payment.amount})
    return payment


def _payee_block(payment: Payment) -> str:
    """Why this (locked) payout may not leave now, read from its payee as it is now."""
    if payment.payee_id is None:
        return ""
    return payout_block_reason(User.objects.filter(pk=payment.payee_id).values_list("payout_status", flat=True).first())


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=settings.PAYOUT_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))


def payment_execute(*, payment_id: int, actor: Actor | str, scoped_to: Actor | None = None,
                    resumed: bool = False) -> Payment:
    """Send a PENDING or ERROR payout to the PSP. Safe to run any number of times.

    The PSP call happens between two short transactions, never while a row
    lock is held; it carries ``payout-<id>`` as idempotency key, so two
    concurrent or repeated executions create one payout at the provider.

    An explicit request (``scoped_to``) for a payout already on its way is
    refused with 409 — unless it ``resumed`` a request with the same
    Idempotency-Key whose answer was lost: then the payout that request sent
    is its answer.
    """
    with service_transaction():
        payment = payment_lock(payment_id, scoped_to)
        hold = payout_hold_reason(payment) if payment.status not in Payment.SENT_OR_AFTER else None
        if hold:
            if scoped_to is not None:
                raise Conflict("payment_on_hold", "The payout may not leave now.",
                               details={"status": payment.status, "reason": hold})
            return payment
        if payment.status in Payment.RETRYABLE_VERDICTS and scoped_to is not None:
            _retry_verdict(payment, actor)
        if payment.status not in Payment.EXECUTABLE:
            if scoped_to is not None and not (resumed and payment.status in Payment.SENT_OR_AFTER):
                # an explicit request: say why nothing happens
                raise Conflict(f"payment_is_{payment.status.lower()}", f"The payment is {payment.status}.",
                               details={"status": payment.status})
            return payment  # a repeated task: the work is done
        blocked = _payee_block(payment)
        if blocked or payment.blocked_reason:
            payment.blocked_reason = blocked
            payment.save(update_fields=["blocked_reason", "updated_at"])
            if blocked:
                if scoped_to is not None:
                    raise Conflict(blocked, "The payee is not verified: the payout waits until it is.",
                                   details={"blocked_reason": blocked})
                return payment  # waits; payees.payee_on_status_changed (or the sweeper) sends it
        payment.attempts += 1
        payment.save(update_fields=["attempts", "updated_at"])
        request = PayoutRequest(payment_id=payment.pk, amount=payment.amount, currency=payment.currency,
                                destination=payment.destination, generation=payment.payout_generation,
                                metadata={"payment_id": payment.pk, "escrow_id": payment.escrow_id})
    try:
        result = get_provider().create_payout(request)
    except PspError as exc:
        return _record_failure(payment_id=payment_id, actor=actor, error=exc)

    with service_transaction():
        payment = payment_lock(payment_id)
        if payment.status in Payment.EXECUTABLE:
            payment.psp_ref = result.psp_ref
            payment.last_error = ""
            payment.next_attempt_at = None
            transition(payment, PaymentStatus.SENT)
            payment.save(update_fields=["status", "psp_ref", "last_error", "next_attempt_at", "updated_at"])
            events.emit(account_id=payment.owner_id, type="payment.sent", resource=payment)
            audit.record(actor, "payment.sent", payment, {"psp_ref": result.psp_ref, "attempt": payment.attempts})
    return payment


def _retry_verdict(payment: Payment, actor: Actor | str) -> None:
    """An explicit retry of a FAILED or RETURNED payout: PENDING again, sent as a new PSP
    request (its generation was bumped when the PSP gave its verdict)."""
    previous = payment.status
    transition(payment, PaymentStatus.PENDING)
    payment.next_attempt_at = None
    payment.gave_up_at = None
    payment.save(update_fields=["status", "next_attempt_at", "gave_up_at", "updated_at"])
    audit.record(actor, "payment.retried", payment, {"from": previous, "failure_code": payment.failure_code,
                                                     "generation": payment.payout_generation})


def _record_failure(*, payment_id: int, actor: Actor | str, error: PspError) -> Payment:
    with service_transaction():
        payment = payment_lock(payment_id)
        if payment.status not in Payment.EXECUTABLE:
            return payment
        payment.status = PaymentStatus.ERROR
        payment.last_error = f"{type(error).__name__}: {error}"[:500]
        retryable = getattr(error, "retryable", False) and payment.attempts < settings.PAYOUT_MAX_ATTEMPTS
        payment.next_attempt_at = timezone.now() + _retry_delay(payment.attempts) if retryable else None
        fields = ["status", "last_error", "next_attempt_at", "updated_at"]
        if not retryable and payment.gave_up_at is None:
            payment.gave_up_at = timezone.now()
            fields.append("gave_up_at")
            audit.alert_raise(
                type="payout_gave_up", severity="critical", actor=actor,
                message=f"Payout #{payment.pk} failed {payment.attempts} time(s) and will not be retried automatically.",
                data={"payment_id": payment.pk, "error": payment.last_error},
            )
        payment.save(update_fields=fields)
        events.emit(account_id=payment.owner_id, type="payment.failed", resource=payment)
        audit.record(actor, "payment.failed", payment, {"error": payment.last_error, "attempt": payment.attempts,
                                                        "will_retry": retryable})
    logger.warning("payout failed", extra={"payment_id": payment_id, "error": payment.last_error})
    return payment


def _check_psp_ref(payment: Payment, psp_ref: str) -> None:
    """An event about another PSP payout than the one we recorded is refused, not applied."""
    if psp_ref and payment.psp_ref and psp_ref != payment.psp_ref:
        raise Unprocessable("psp_ref_mismatch", "The PSP event names another payout than the one recorded.",
                            details={"recorded": payment.psp_ref, "reported": psp_ref})


def _check_amount(payment: Payment, amount: Decimal | None, currency: str | None) -> None:
    if (amount is not None and amount != payment.amount) or (currency is not None and currency != payment.currency):
        raise Unprocessable("payment_amount_mismatch", "The PSP reports another amount or currency for this payout.",
                            details={"expected": f"{payment.amount} {payment.currency}", "reported": f"{amount} {currency}"})


def payment_settle(*, actor: Actor | str, payment_id: int, psp_ref: str = "", amount: Decimal | None = None,
                   currency: str | None = None) -> tuple[Payment, bool]:
    """The PSP paid the payee: the payment is SETTLED and its money leaves the
    escrow's ledger account. Returns the payment and whether it was settled now
    (``False``: already SETTLED, nothing changed).

    Runs inside the caller's transaction, which has locked the payment's
    escrow first (``escrow.services.escrow_settle_payout``).
    """
    require_transaction("payment_settle (after the escrow lock: escrow.services orchestrates settlement)")
    with transaction.atomic():
        payment = payment_lock(payment_id)
        if payment.status == PaymentStatus.SETTLED:
            return payment, False
        _check_amount(payment, amount, currency)
        _check_psp_ref(payment, psp_ref)
        transition(payment, PaymentStatus.SETTLED)
        payment.psp_ref = psp_ref or payment.psp_ref
        payment.settled_at = timezone.now()
        payment.save(update_fields=["status", "psp_ref", "settled_at", "updated_at"])
        events.emit(account_id=payment.owner_id, type="payment.settled", resource=payment)
        if payment.escrow_id:
            ledger.transfer(movement=ledger.payout_movement(payment.pk, payment.payout_generation),
                            kind=LedgerEntry.Kind.PAYOUT, currency=payment.currency,
                            amount=payment.amount, source=ledger.escrow_account(payment.escrow_id),
                            target=ledger.PSP_CLEARING)
        payee_record_payout_outcome(actor=actor, payment=payment)
        audit.record(actor, "payment.settled", payment, {"psp_ref": payment.psp_ref, "amount": payment.amount})
    return payment, True


def payment_mark_sent(*, actor: Actor | str, payment_id: int, psp_ref: str = "") -> Payment:
    with service_transaction():
        payment = payment_lock(payment_id)
        if payment.status not in Payment.EXECUTABLE:
            return payment
        _check_psp_ref(payment, psp_ref)
        transition(payment, PaymentStatus.SENT)
        payment.psp_ref = psp_ref or payment.psp_ref
        payment.save(update_fields=["status", "psp_ref", "updated_at"])
        events.emit(account_id=payment.owner_id, type="payment.sent", resource=payment)
        audit.record(actor, "payment.sent", payment, {"psp_ref": payment.psp_ref})
    return payment


def payment_fail(*, actor: Actor | str, payment_id: int, reason: str, psp_ref: str = "",
                 failure_code: str = "") -> Payment:
    """The PSP reports the payout failed (``payout.failed``): the payout is FAILED
    with the PSP's ``failure_code`` and an Alert is raised. Nothing left the
    escrow's ledger account (a payout is booked when it settles), so its money
    is held there still, promised to this payout until ``POST
    /payments/{id}/execute`` sends it again as a new PSP request (next
    generation of its idempotency key) or a dispute resolution cancels it. A
    repeated report changes nothing."""
    with service_transaction():
        payment = payment_lock(payment_id)
        if payment.status not in (PaymentStatus.PENDING, PaymentStatus.SENT, PaymentStatus.ERROR):
            return payment
        _check_psp_ref(payment, psp_ref)
        transition(payment, PaymentStatus.FAILED)
        payment.last_error = reason[:500]
        payment.failure_code = (failure_code or "payout_failed")[:64]
        payment.payout_generation += 1
        payment.next_attempt_at = None
        payment.save(update_fields=["status", "last_error", "failure_code", "payout_generation", "next_attempt_at",
                                    "updated_at"])
        audit.alert_raise(type="payout_failed", actor=actor,
                          message=f"The PSP failed payout #{payment.pk} ({payment.failure_code}); retry it or resolve.",
                          data={"payment_id": payment.pk, "failure_code": payment.failure_code})
        events.emit(account_id=payment.owner_id, type="payment.failed", resource=payment,
                    context={"failure_code": payment.failure_code})
        audit.record(actor, "payment.failed", payment, {"error": payment.last_error, "source": "psp",
                                                        "failure_code": payment.failure_code})
        payee_record_payout_outcome(actor=actor, payment=payment)
    return payment


def payment_return(*, actor: Actor | str, payment_id: int, failure_code: str = "", amount: Decimal | None = None,
                   currency: str | None = None) -> tuple[Payment, bool]:
    """The bank sent a settled payout back (``payout.returned``): the payment is
    RETURNED with the PSP's ``failure_code``, its money is booked back into the
    escrow's ledger account, an Alert is raised, and ``POST
    /payments/{id}/execute`` may send it again (next generation). Returns the
    payment and whether it changed now (``False``: already returned).

    Runs inside the caller's transaction, which has locked the payment's
    escrow first (``escrow.services.escrow_return_payout``).
    """
    require_transaction("payment_return (after the escrow lock: escrow.services orchestrates settlement)")
    with transaction.atomic():
        payment = payment_lock(payment_id)
        if payment.status != PaymentStatus.SETTLED:
            if payment.status in (PaymentStatus.RETURNED, PaymentStatus.REFUNDED, PaymentStatus.CANCELLED) or (
                    payment.payout_generation > 1 and payment.status in Payment.EXECUTABLE | Payment.SENT_OR_AFTER):
                return payment, False  # a replay, or the return of an earlier generation already handled
            transition(payment, PaymentStatus.RETURNED)  # refused: 409 payment_is_<status>
        _check_amount(payment, amount, currency)
        if payment.escrow_id:
            ledger.transfer(movement=f"payout_return:{payment.pk}:g{payment.payout_generation}",
                            kind=LedgerEntry.Kind.PAYOUT_REFUND, currency=payment.currency, amount=payment.amount,
                            source=ledger.PSP_CLEARING, target=ledger.escrow_account(payment.escrow_id))
        transition(payment, PaymentStatus.RETURNED)
        payment.failure_code = (failure_code or "payout_returned")[:64]
        payment.payout_generation += 1
        payment.settled_at = None
        payment.save(update_fields=["status", "failure_code", "payout_generation", "settled_at", "updated_at"])
        audit.alert_raise(type="payout_returned", actor=actor,
                          message=f"Settled payout #{payment.pk} was returned ({payment.failure_code}); retry it or resolve.",
                          data={"payment_id": payment.pk, "failure_code": payment.failure_code})
        events.emit(account_id=payment.owner_id, type="payment.returned", resource=payment,
                    context={"failure_code": payment.failure_code})
        audit.record(actor, "payment.returned", payment, {"amount": payment.amount, "failure_code": payment.failure_code})
        payee_record_payout_outcome(actor=actor, payment=payment)
    return payment, True


def payment_refund(*, actor: Actor | str, payment_id: int, amount: Decimal | None = None,
                   currency: str | None = None) -> tuple[Payment, bool]:
    """A settled payout came back: the payment is REFUNDED and its money returns
    to the escrow's ledger account. Returns the payment and whether it changed now.

    Runs inside the caller's transaction, which has locked the payment's
    escrow first (``escrow.services.escrow_return_payout``).
    """
    require_transaction("payment_refund (after the escrow lock: escrow.services orchestrates settlement)")
    with transaction.atomic():
        payment = payment_lock(payment_id)
        if payment.status == PaymentStatus.REFUNDED:
            return payment, False
        _check_amount(payment, amount, currency)
        transition(payment, PaymentStatus.REFUNDED)
        payment.save(update_fields=["status", "updated_at"])
        if payment.escrow_id:
            ledger.transfer(movement=f"payout_refund:{payment.pk}", kind=LedgerEntry.Kind.PAYOUT_REFUND,
                            currency=payment.currency, amount=payment.amount, source=ledger.PSP_CLEARING,
                            target=ledger.escrow_account(payment.escrow_id))
        audit.alert_raise(type="payout_refunded", actor=actor, message=f"Settled payout #{payment.pk} was refunded.",
                          data={"payment_id": payment.pk})
        events.emit(account_id=payment.owner_id, type="payment.refunded", resource=payment)
        audit.record(actor, "payment.refunded", payment, {"amount": payment.amount})
        payee_record_payout_outcome(actor=actor, payment=payment)
    return payment, True


def payments_due_for_retry(*, now=None, pending_grace_seconds: int = 120) -> list[int]:
    """PENDING payouts whose message may be lost, and ERROR ones whose backoff has passed."""
    now = now or clock.now()
    payee_may_be_paid = Q(payee__isnull=True) | Q(payee__payout_status="verified")
    due = Payment.objects.filter(
        Q(status=PaymentStatus.PENDING, created_at__lte=now - timedelta(seconds=pending_grace_seconds),
          blocked_reason="")
        # waiting for a verification that has happened (its release message was lost, or raced it)
        | (Q(status=PaymentStatus.PENDING) & ~Q(blocked_reason="") & payee_may_be_paid)
        | Q(status=PaymentStatus.ERROR, gave_up_at__isnull=True, next_attempt_at__lte=now)
    )
    return list(due.order_by("pk").values_list("pk", flat=True)[:500])


def payments_sweep(*, now=None) -> int:
    """The beat job's body: re-send what is due, in-process (each call is idempotent)."""
    actor = Actor.system("payout_sweeper")
    due = payments_due_for_retry(now=now)
    for payment_id in due:
        payment_execute(payment_id=payment_id, actor=actor)
    return len(due)
