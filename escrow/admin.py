"""Escrows in the admin: read-only, with their milestones and timeline.

Every change of an escrow moves money or its state, so it happens only
through ``escrow.services`` (API, proof decisions, jobs); the admin shows.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q

from escrow.models import EscrowAgreement, EscrowEvent, Milestone
from kobatela.core.admin_site import ReadOnlyAdminMixin


class _ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False


class MilestoneInline(_ReadOnlyInline):
    model = Milestone
    fields = ["idx", "label", "amount", "status", "proof_type", "proof_requirements", "geofence_lat", "geofence_lng",
              "geofence_radius_m", "approved_at", "paid_at"]
    readonly_fields = fields
    ordering = ["idx"]


class EscrowEventInline(_ReadOnlyInline):
    model = EscrowEvent
    verbose_name_plural = "timeline (escrow events)"
    fields = ["created_at", "kind", "actor", "data"]
    readonly_fields = fields
    ordering = ["created_at", "id"]


@admin.register(EscrowAgreement)
class EscrowAgreementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "client", "provider", "amount_total", "amount_funded", "amount_released", "amount_refunded",
                    "currency", "status", "deadline_at", "created_at"]
    list_select_related = ["client", "provider"]
    list_filter = ["status", "currency"]
    search_fields = ["client__email"]  # shows the box; get_search_results says what is searched
    search_help_text = "Escrow id, or the client's or provider's email."
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [MilestoneInline, EscrowEventInline]
    fields = ["id", "client", "provider", "amount_total", "amount_funded", "amount_released", "amount_refunded",
              "currency", "status", "deadline_at", "release_conditions", "delivered_at", "deadline_handled_at",
              "created_at", "updated_at"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(client__email__iexact=term) | Q(provider__email__iexact=term)
        if term.isdigit() and len(term) <= 18:
            query |= Q(pk=int(term))
        return queryset.filter(query), False
