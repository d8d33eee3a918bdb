from __future__ import annotations

from django.db.models import Count, QuerySet, Sum

from kobatela.core.actor import Actor
from spend.models import Merchant, PayeeSpend, Purchase, SpendCategory, UsageMandate


def mandate_list_for(actor: Actor) -> QuerySet[UsageMandate]:
    """The mandates an actor may see (a sender: those it gave), allow lists prefetched."""
    qs = UsageMandate.objects.prefetch_related("allowed_categories", "allowed_merchants")
    return qs if actor.sees_all else qs.filter(sender_id=actor.user_id)


def purchase_list_for(actor: Actor) -> QuerySet[Purchase]:
    qs = Purchase.objects.select_related("mandate").prefetch_related(
        "mandate__allowed_categories", "mandate__allowed_merchants")
    return qs if actor.sees_all else qs.filter(sender_id=actor.user_id)


def category_list() -> QuerySet[SpendCategory]:
    return SpendCategory.objects.all()


def merchant_list() -> QuerySet[Merchant]:
    return Merchant.objects.all()


def public_mandate_aggregates(*, sector: str | None = None, status: str | None = None) -> list[dict]:
    """Counts and sums by sector, status and currency — nothing that names a
    person, an account or a mandate."""
    qs = UsageMandate.objects.all()
    if sector:
        qs = qs.filter(sector=sector)
    if status:
        qs = qs.filter(status=status)
    rows = (qs.values("sector", "status", "currency")
            .annotate(count=Count("id"), total_amount=Sum("total_amount"), remaining_amount=Sum("remaining_amount"))
            .order_by("sector", "status", "currency"))
    return [{**row, "spent_amount": row["total_amount"] - row["remaining_amount"]} for row in rows]


def payee_spend_get(spend_id: int) -> PayeeSpend:
    return PayeeSpend.objects.select_related("payment", "payee").get(pk=spend_id)
