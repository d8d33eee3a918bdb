"""Double-entry postings: the one function that writes ledger lines, and the
names of every ledger account (the one place they are spelled)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum

from kobatela.core import db
from kobatela.core.transactions import require_transaction
from payments.models import LedgerEntry

PSP_CLEARING = "psp:clearing"  # money on its way in from, or out to, the PSP


def escrow_account(escrow_id: int) -> str:
    """What one escrow holds."""
    return f"escrow:{escrow_id}"


def mandate_account(mandate_id: int) -> str:
    """The budget of a usage mandate."""
    return f"mandate:{mandate_id}"


def merchant_account(merchant_id: int) -> str:
    """What merchants were paid from mandates."""
    return f"merchant:{merchant_id}"


def payout_movement(payment_id: int, generation: int = 1) -> str:
    """The movement of a payout's settlement: ``payout:<id>``, or ``payout:<id>:g<n>`` when a
    returned payout is sent again and settles a second time."""
    return f"payout:{payment_id}" if generation == 1 else f"payout:{payment_id}:g{generation}"


def payout_settled_ids() -> set[int]:
    """The payments with at least one settlement movement in the ledger."""
    movements = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYOUT, movement__startswith="payout:")
    return {int(m.split(":")[1]) for m in movements.values_list("movement", flat=True).distinct()}


class UnbalancedPosting(Exception):
    """A bug: a movement whose lines do not sum to zero is never written."""


def post(*, movement: str, kind: str, currency: str, lines: list[tuple[str, Decimal]]) -> list[LedgerEntry]:
    """Write one movement. Must run inside the transaction that moves the money."""
    require_transaction("ledger.post")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for _, amount in lines:
        totals[currency] += amount
    if any(total != 0 for total in totals.values()) or len(lines) < 2:
        raise UnbalancedPosting(f"{movement}: lines sum to {dict(totals)}")
    return db.insert([
        LedgerEntry(movement=movement, kind=kind, account=account, amount=amount, currency=currency)
        for account, amount in lines
    ])


def transfer(*, movement: str, kind: str, currency: str, amount: Decimal, source: str, target: str) -> list[LedgerEntry]:
    """The common two-line movement: ``amount`` from ``source`` to ``target``."""
    return post(movement=movement, kind=kind, currency=currency, lines=[(source, -amount), (target, amount)])


def balance(account: str, currency: str | None = None) -> Decimal:
    qs = LedgerEntry.objects.filter(account=account)
    if currency:
        qs = qs.filter(currency=currency)
    return qs.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
