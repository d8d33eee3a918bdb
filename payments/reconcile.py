"""Every money invariant, checked against the ledger. ``manage.py reconcile`` runs it.

Read-only. Each check yields human-readable disagreements; none means the
books are consistent. The ledger's own invariants are here:

1. every movement's lines sum to zero (per currency);
2. a payout's status agrees with the ledger (a SETTLED or REFUNDED payout
   has its payout movement, a SENT or ERROR one has none).

The apps whose balances live in the ledger add theirs from their
``AppConfig.ready()`` with :func:`register_check` (``escrow.reconcile``:
escrow totals and milestone statuses; ``spend.reconcile``: mandates), since
payments sits below them and imports neither.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal

from django.db.models import QuerySet, Sum

from kobatela.core.money import ZERO
from payments.ledger import payout_settled_ids
from payments.models import LedgerEntry, Payment, PaymentStatus

Check = Callable[[], Iterable[str]]
_CHECKS: list[Check] = []


def register_check(check: Check) -> None:
    if check not in _CHECKS:
        _CHECKS.append(check)


def sums_by(qs: QuerySet, key: str, amount: str = "amount") -> dict:
    """``{key value: sum of amount}`` over ``qs``, in one query."""
    return {row[key]: row["total"] for row in qs.values(key).annotate(total=Sum(amount)).order_by()}


def ledger_by_account_and_kind(account_prefix: str) -> dict[tuple[str, str], Decimal]:
    """``{(account, kind): total}`` for the accounts named ``<prefix>…``; zero when absent."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for row in (LedgerEntry.objects.filter(account__startswith=account_prefix).values("account", "kind")
                .annotate(total=Sum("amount")).order_by()):
        totals[(row["account"], row["kind"])] = row["total"]
    return totals


def _unbalanced_movements() -> Iterator[str]:
    rows = (LedgerEntry.objects.values("movement", "currency").annotate(total=Sum("amount"))
            .exclude(total=0).order_by("movement"))
    for row in rows:
        yield f"movement {row['movement']} ({row['currency']}) sums to {row['total']}, not 0"


def _payout_disagreements() -> Iterator[str]:
    paid_ids = payout_settled_ids()
    for payment in Payment.objects.filter(escrow__isnull=False).exclude(status=PaymentStatus.PENDING).order_by("pk").iterator():
        has_payout = payment.pk in paid_ids
        if payment.status in (PaymentStatus.SETTLED, PaymentStatus.REFUNDED, PaymentStatus.RETURNED) and not has_payout:
            yield f"payment #{payment.pk}: {payment.status} but no payout in the ledger"
        if payment.status in (PaymentStatus.SENT, PaymentStatus.ERROR) and has_payout and payment.payout_generation == 1:
            yield f"payment #{payment.pk}: {payment.status} but the ledger shows it paid"


def reconcile() -> list[str]:
    problems = [*_unbalanced_movements(), *_payout_disagreements()]
    for check in _CHECKS:
        problems.extend(check())
    return problems
