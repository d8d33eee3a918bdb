from __future__ import annotations

from django.db.models import QuerySet

from payments.models import Transaction


def transaction_list() -> QuerySet[Transaction]:
    """Transactions are an admin tool: admin keys see them all."""
    return Transaction.objects.all()
