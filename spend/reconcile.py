"""Mandate invariants against the ledger, run by ``manage.py reconcile``
(registered with ``payments.reconcile`` in ``SpendConfig.ready()``): each
usage mandate is funded with its total; its ledger balance is
remaining_amount while ACTIVE/CONSUMED and 0 once EXPIRED/REVOKED (the rest
was released); purchases add up to total − remaining, in the ledger too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

from kobatela.core.money import ZERO
from payments.ledger import mandate_account
from payments.models import LedgerEntry
from payments.reconcile import ledger_by_account_and_kind, sums_by
from spend.models import MandateStatus, Purchase, UsageMandate


def mandate_disagreements() -> Iterator[str]:
    ledger_by_kind = ledger_by_account_and_kind(mandate_account(""))
    balances: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for (account, _), total in ledger_by_kind.items():
        balances[account] += total
    purchased = sums_by(Purchase.objects.all(), "mandate_id")
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
