"""Escrow invariants against the ledger, run by ``manage.py reconcile``
(registered with ``payments.reconcile`` in ``EscrowConfig.ready()``):

- each escrow: deposits = amount_funded = what the ledger moved in; settled
  payouts (net of refunds) = amount_released = what it moved out; ledger
  balance = funded − released − refunded; never overfunded;
- a PAID milestone has a SETTLED payment; a RELEASED escrow has every
  milestone PAID; a FUNDED one is fully funded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

from django.db.models import Q

from escrow.models import EscrowAgreement, EscrowDeposit, EscrowStatus, Milestone, MilestoneStatus, Refund, RefundStatus
from kobatela.core.money import ZERO
from payments.ledger import escrow_account
from payments.models import LedgerEntry, Payment, PaymentStatus
from payments.reconcile import ledger_by_account_and_kind, sums_by


def escrow_disagreements() -> Iterator[str]:
    deposits = sums_by(EscrowDeposit.objects.all(), "escrow_id")
    ledger_by_kind = ledger_by_account_and_kind(escrow_account(""))
    settled = sums_by(Payment.objects.filter(status=PaymentStatus.SETTLED, escrow__isnull=False), "escrow_id")
    balances: dict[str, Decimal] = defaultdict(lambda: ZERO)  # every kind of line, per account: once, not per escrow
    for (account, _), total in ledger_by_kind.items():
        balances[account] += total

    for escrow in EscrowAgreement.objects.order_by("pk").iterator(chunk_size=1000):
        account = escrow_account(escrow.pk)
        name = f"escrow #{escrow.pk}"
        deposited = deposits.get(escrow.pk, ZERO)
        ledger_in = ledger_by_kind[(account, LedgerEntry.Kind.DEPOSIT)]
        ledger_out = -(ledger_by_kind[(account, LedgerEntry.Kind.PAYOUT)]
                       + ledger_by_kind[(account, LedgerEntry.Kind.PAYOUT_REFUND)])
        ledger_refunded = -ledger_by_kind[(account, LedgerEntry.Kind.ESCROW_REFUND)]
        balance = balances[account]
        if not (deposited == escrow.amount_funded == ledger_in):
            yield f"{name}: amount_funded {escrow.amount_funded}, deposits {deposited}, ledger deposits {ledger_in}"
        if not (escrow.amount_released == ledger_out == settled.get(escrow.pk, ZERO)):
            yield (f"{name}: amount_released {escrow.amount_released}, ledger payouts {ledger_out}, "
                   f"settled payments {settled.get(escrow.pk, ZERO)}")
        if escrow.amount_refunded != ledger_refunded:
            yield f"{name}: amount_refunded {escrow.amount_refunded}, ledger refunds {ledger_refunded}"
        expected_balance = escrow.amount_funded - escrow.amount_released - escrow.amount_refunded
        if balance != expected_balance:
            yield f"{name}: ledger balance {balance}, expected {expected_balance}"
        if escrow.amount_funded > escrow.amount_total:
            yield f"{name}: overfunded ({escrow.amount_funded} > {escrow.amount_total})"
        if escrow.status == EscrowStatus.FUNDED and escrow.amount_funded != escrow.amount_total:
            yield f"{name}: FUNDED with {escrow.amount_funded} of {escrow.amount_total}"


def status_disagreements() -> Iterator[str]:
    paid_without_settlement = (Milestone.objects.filter(status=MilestoneStatus.PAID)
                               .exclude(payments__status=PaymentStatus.SETTLED).values_list("pk", flat=True))
    for pk in paid_without_settlement:
        yield f"milestone #{pk}: PAID without a SETTLED payment"
    finished = (MilestoneStatus.PAID, MilestoneStatus.RESOLVED)
    released_unpaid = (EscrowAgreement.objects.filter(status=EscrowStatus.RELEASED, amount_refunded=0)
                       .filter(Q(milestones__status__in=[s for s in MilestoneStatus.values if s not in finished]))
                       .distinct().values_list("pk", flat=True))
    for pk in released_unpaid:
        yield f"escrow #{pk}: RELEASED with milestones not PAID"


def refund_disagreements() -> Iterator[str]:
    """Each refund is booked once (``refund:<id>``) and, once FAILED, booked back once
    (``refund_failed:<id>``); an escrow's refunds never exceed what it refunded."""
    booked = sums_by(LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ESCROW_REFUND, amount__lt=0,
                                                movement__startswith="refund:"), "movement")
    returned = sums_by(LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ESCROW_REFUND, amount__gt=0,
                                                  movement__startswith="refund_failed:"), "movement")
    for refund in Refund.objects.order_by("pk").iterator():
        if -booked.get(f"refund:{refund.pk}", ZERO) != refund.amount:
            yield f"refund #{refund.pk}: {refund.amount} but the ledger booked {-booked.get(f'refund:{refund.pk}', ZERO)}"
        back = returned.get(f"refund_failed:{refund.pk}", ZERO)
        if (refund.status == RefundStatus.FAILED) != (back == refund.amount) or back not in (ZERO, refund.amount):
            yield f"refund #{refund.pk}: {refund.status} but the ledger booked {back} back"
