"""Every money invariant, checked against the ledger. ``manage.py reconcile`` runs it.

Read-only. Each check yields human-readable disagreements; none means the
books are consistent:

1. every movement's lines sum to zero (per currency);
2. each escrow: deposits = amount_funded = what the ledger moved in;
   settled payouts (net of refunds) = amount_released = what it moved out;
   ledger balance = funded − released − refunded; never overfunded;
3. payment and milestone statuses agree with the ledger (a SETTLED payment
   has its payout movement, a PAID milestone has a SETTLED payment);
4. a RELEASED escrow has every milestone PAID; a FUNDED one is fully funded;
5. each usage mandate: funded with its total; its ledger balance is
   remaining_amount while ACTIVE/CONSUMED and 0 once EXPIRED/REVOKED (the
   rest was released); purchases add up to total − remaining, in the ledger too.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterator

from django.db.models import Q, Sum

from escrow.models import EscrowAgreement, EscrowDeposit, EscrowStatus, Milestone, MilestoneStatus
from payments.ledger import escrow_account
from payments.models import LedgerEntry, Payment, PaymentStatus
from spend.ledger_accounts import mandate_account
from spend.models import MandateStatus, Purchase, UsageMandate

ZERO = Decimal("0.00")


def _unbalanced_movements() -> Iterator[str]:
    rows = (LedgerEntry.objects.values("movement", "currency").annotate(total=Sum("amount"))
            .exclude(total=0).order_by("movement"))
    for row in rows:
        yield f"movement {row['movement']} ({row['currency']}) sums to {row['total']}, not 0"


def _sums_by(qs, key: str, amount: str = "amount") -> dict:
    return {row[key]: row["total"] for row in qs.values(key).annotate(total=Sum(amount)).order_by()}


def _escrow_disagreements() -> Iterator[str]:
    deposits = _sums_by(EscrowDeposit.objects.all(), "escrow_id")
    ledger_by_kind: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for row in (LedgerEntry.objects.filter(account__startswith="escrow:").values("account", "kind")
                .annotate(total=Sum("amount")).order_by()):
        ledger_by_kind[(row["account"], row["kind"])] = row["total"]
    settled = _sums_by(Payment.objects.filter(status=PaymentStatus.SETTLED, escrow__isnull=False), "escrow_id")

    for escrow in EscrowAgreement.objects.order_by("pk").iterator(chunk_size=1000):
        account = escrow_account(escrow.pk)
        name = f"escrow #{escrow.pk}"
        deposited = deposits.get(escrow.pk, ZERO)
        ledger_in = ledger_by_kind[(account, LedgerEntry.Kind.DEPOSIT)]
        ledger_out = -(ledger_by_kind[(account, LedgerEntry.Kind.PAYOUT)]
                       + ledger_by_kind[(account, LedgerEntry.Kind.PAYOUT_REFUND)])
        ledger_refunded = -ledger_by_kind[(account, LedgerEntry.Kind.ESCROW_REFUND)]
        balance = sum((v for (acc, _), v in ledger_by_kind.items() if acc == account), ZERO)
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


def _status_disagreements() -> Iterator[str]:
    payout_movements = set(LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYOUT).values_list("movement", flat=True))
    for payment in Payment.objects.filter(escrow__isnull=False).exclude(status=PaymentStatus.PENDING).order_by("pk").iterator():
        has_payout = f"payout:{payment.pk}" in payout_movements
        if payment.status in (PaymentStatus.SETTLED, PaymentStatus.REFUNDED) and not has_payout:
            yield f"payment #{payment.pk}: {payment.status} but no payout in the ledger"
        if payment.status in (PaymentStatus.SENT, PaymentStatus.ERROR) and has_payout:
            yield f"payment #{payment.pk}: {payment.status} but the ledger shows it paid"
    paid_without_settlement = (Milestone.objects.filter(status=MilestoneStatus.PAID)
                               .exclude(payments__status=PaymentStatus.SETTLED).values_list("pk", flat=True))
    for pk in paid_without_settlement:
        yield f"milestone #{pk}: PAID without a SETTLED payment"
    released_unpaid = (EscrowAgreement.objects.filter(status=EscrowStatus.RELEASED)
                       .filter(Q(milestones__status__in=[s for s in MilestoneStatus.values if s != MilestoneStatus.PAID]))
                       .distinct().values_list("pk", flat=True))
    for pk in released_unpaid:
        yield f"escrow #{pk}: RELEASED with milestones not PAID"


def _mandate_disagreements() -> Iterator[str]:
    ledger_by_kind: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    balances: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in (LedgerEntry.objects.filter(account__startswith="mandate:").values("account", "kind")
                .annotate(total=Sum("amount")).order_by()):
        ledger_by_kind[(row["account"], row["kind"])] = row["total"]
        balances[row["account"]] += row["total"]
    purchased = _sums_by(Purchase.objects.all(), "mandate_id")
    for mandate in UsageMandate.objects.order_by("pk").iterator(chunk_size=1000):
        account = mandate_account(mandate.pk)
        name = f"mandate #{mandate.pk}"
        funded = ledger_by_kind[(account, LedgerEntry.Kind.MANDATE_FUNDING)]
        spent_in_ledger = -ledger_by_kind[(account, LedgerEntry.Kind.PURCHASE)]
        released = -ledger_by_kind[(account, LedgerEntry.Kind.MANDATE_RELEASE)]
        balance = balances[account]
        spent = purchased.get(mandate.pk, ZERO)
        if funded != mandate.total_amount:
            yield f"{name}: total_amount {mandate.total_amount}, ledger funding {funded}"
        if not (spent == spent_in_ledger == mandate.total_amount - mandate.remaining_amount):
            yield (f"{name}: purchases {spent}, ledger purchases {spent_in_ledger}, "
                   f"total − remaining {mandate.total_amount - mandate.remaining_amount}")
        if mandate.status in (MandateStatus.ACTIVE, MandateStatus.CONSUMED):
            if balance != mandate.remaining_amount or released != ZERO:
                yield f"{name}: {mandate.status} with ledger balance {balance} (released {released}), remaining {mandate.remaining_amount}"
        elif balance != ZERO or released != mandate.remaining_amount:
            yield f"{name}: {mandate.status} with ledger balance {balance}, released {released} of {mandate.remaining_amount}"
        if mandate.status == MandateStatus.CONSUMED and mandate.remaining_amount != ZERO:
            yield f"{name}: CONSUMED with {mandate.remaining_amount} remaining"


def reconcile() -> list[str]:
    return [*_unbalanced_movements(), *_escrow_disagreements(), *_status_disagreements(), *_mandate_disagreements()]
