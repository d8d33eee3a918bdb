"""The review queue's filters. Each has fixed choices (settings, not a query), so
showing them costs no query whatever the page size."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.utils import timezone

from proofs.models import ProofStatus, RiskLevel

__all__ = ["AgeFilter", "CurrencyFilter", "QueueFilter", "RiskFilter"]


class QueueFilter(admin.SimpleListFilter):
    """Pending proofs unless asked otherwise: the changelist opens as the queue."""

    title = "queue"
    parameter_name = "queue"
    default = "pending"

    def lookups(self, request, model_admin):
        return [("pending", "Waiting for review"), ("decided", "Decided"), ("superseded", "Superseded"),
                ("all", "All proofs")]

    def choices(self, changelist):
        current = self.value() or self.default
        for lookup, title in self.lookup_choices:
            yield {"selected": current == lookup, "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup})}

    def queryset(self, request, queryset):
        value = self.value() or self.default
        if value == "pending":
            return queryset.filter(status=ProofStatus.PENDING)
        if value == "decided":
            return queryset.filter(status__in=[ProofStatus.APPROVED, ProofStatus.REJECTED])
        if value == "superseded":
            return queryset.filter(status=ProofStatus.SUPERSEDED)
        return queryset


class RiskFilter(admin.SimpleListFilter):
    title = "AI risk"
    parameter_name = "risk"

    def lookups(self, request, model_admin):
        return [(RiskLevel.HIGH, "High"), (RiskLevel.MEDIUM, "Medium"), (RiskLevel.LOW, "Low"), ("none", "Not scored")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(ai_risk_level="")
        if value in RiskLevel.values:
            return queryset.filter(ai_risk_level=value)
        return queryset


class CurrencyFilter(admin.SimpleListFilter):
    """The escrow's currency; the choices come from settings (no query)."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        return [(code, code) for code in settings.ALLOWED_CURRENCIES]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(escrow__currency=self.value())
        return queryset


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BUCKETS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [("1h", "< 1 hour"), ("24h", "< 24 hours"), ("7d", "< 7 days"), ("older", "Older than 7 days")]

    def queryset(self, request, queryset):
        value, now = self.value(), timezone.now()
        if value in self.BUCKETS:
            return queryset.filter(created_at__gte=now - self.BUCKETS[value])
        if value == "older":
            return queryset.filter(created_at__lt=now - self.BUCKETS["7d"])
        return queryset
