from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet, Sum

from kobatela.core.actor import Actor
from kobatela.core.errors import NotFound
from kobatela.core.money import ZERO
from kobatela.core.rows import lock_owned_row
from payments.models import Payment, PaymentStatus

# Payouts on their way or still retryable: their money is promised.
# A FAILED or RETURNED payout keeps its money until it is retried or a dispute resolution cancels it.
COMMITTED_PAYMENT_STATUSES = (PaymentStatus.SCHEDULED, PaymentStatus.PENDING, PaymentStatus.SENT, PaymentStatus.ERROR,
                              PaymentStatus.FAILED, PaymentStatus.RETURNED)


def payment_list_for(actor: Actor) -> QuerySet[Payment]:
    qs = Payment.objects.all()
    return qs if actor.sees_all else qs.filter(owner_id=actor.user_id)


def escrow_available_balance(escrow) -> Decimal:
    """What an escrow holds and has not promised to a payout yet:
    funded − released − refunded − payouts not yet settled (COMMITTED_PAYMENT_STATUSES).

    Exact only while the escrow row is locked: every payout is created, and
    settles or comes back, under that lock.
    """
    committed = (Payment.objects.filter(escrow_id=escrow.pk, status__in=COMMITTED_PAYMENT_STATUSES)
                 .aggregate(total=Sum("amount"))["total"] or ZERO)
    return escrow.amount_funded - escrow.amount_released - escrow.amount_refunded - committed


def payment_escrow_id(payment_id: int) -> int | None:
    """The escrow a payout draws on (``None`` for none, or no such payment), read without a lock."""
    return Payment.objects.filter(pk=payment_id).values_list("escrow_id", flat=True).first()


def payment_lock(payment_id: int, actor: Actor | None = None) -> Payment:
    """Lock a payout row until the transaction ends (after its escrow's, when it has one).
    Given an actor, a sender may only lock its own (else 404)."""
    return lock_owned_row(Payment.objects.all(), payment_id, actor=actor, owner_field="owner_id",
                          missing=NotFound("payment_not_found", "No such payment."))
