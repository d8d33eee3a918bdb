"""Escrows in the admin: read-only, with their milestones, payouts, refunds and timeline.

Every change of an escrow moves money or its state, so it happens only
through ``escrow.services`` (API, proof decisions, jobs); the admin shows.
Refunds are listed with their failures; Operations may retry a failed one
(``escrow.refunds.refund_retry``). The dispute queue is in
``proofs.admin.disputes`` (it shows the escrow's proofs).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from escrow.models import EscrowAgreement, EscrowEvent, Milestone, Refund
from escrow.refunds import refund_retry
from kobatela.core.actor import Actor
from kobatela.core.admin_site import ReadOnlyAdminMixin, run_for_each_selected
from payments.models import Payment


class _ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False


class MilestoneInline(_ReadOnlyInline):
    model = Milestone
    fields = ["idx", "label", "amount", "status", "proof_type", "proof_requirements", "geofence_lat", "geofence_lng",
              "geofence_radius_m", "approved_at", "paid_at"]
    readonly_fields = fields
    ordering = ["idx"]


class PaymentInline(_ReadOnlyInline):
    model = Payment
    fk_name = "escrow"
    verbose_name_plural = "payouts"
    fields = ["payment_link", "milestone", "amount", "status", "failure_code", "scheduled_for", "psp_ref", "created_at"]
    readonly_fields = fields
    ordering = ["pk"]

    @admin.display(description="Payout")
    def payment_link(self, obj: Payment) -> str:
        return format_html('<a href="{}">#{}</a>', reverse("admin:payments_payment_change", args=[obj.pk]), obj.pk)


class RefundInline(_ReadOnlyInline):
    model = Refund
    fields = ["refund_link", "dispute", "amount", "status", "failure_code", "psp_ref", "reason", "created_at"]
    readonly_fields = fields
    ordering = ["pk"]

    @admin.display(description="Refund")
    def refund_link(self, obj: Refund) -> str:
        return format_html('<a href="{}">#{}</a>', reverse("admin:escrow_refund_change", args=[obj.pk]), obj.pk)


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
    inlines = [MilestoneInline, PaymentInline, RefundInline, EscrowEventInline]
    fields = ["id", "client", "provider", "amount_total", "amount_funded", "amount_released", "amount_refunded",
              "currency", "status", "deadline_at", "inspection_hours", "release_conditions", "delivered_at",
              "deadline_handled_at", "created_at", "updated_at"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(client__email__iexact=term) | Q(provider__email__iexact=term)
        if term.isdigit() and len(term) <= 18:
            query |= Q(pk=int(term))
        return queryset.filter(query), False


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "escrow_col", "dispute", "amount", "currency", "status", "failure_code", "last_error",
                    "created_by", "created_at"]
    list_filter = ["status", "currency"]
    search_fields = ["psp_ref"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["retry_refund"]
    fields = ["id", "escrow_col", "dispute", "amount", "currency", "status", "reason", "funding_ref", "psp_ref",
              "failure_code", "attempts", "last_error", "created_by", "settled_at", "created_at", "updated_at"]
    readonly_fields = fields

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("escrow.retry_refund")

    @admin.display(description="Escrow", ordering="escrow_id")
    def escrow_col(self, obj: Refund) -> str:
        return format_html('<a href="{}">#{}</a>', reverse("admin:escrow_escrowagreement_change", args=[obj.escrow_id]),
                           obj.escrow_id)

    @admin.action(description="Retry failed refund (a new refund of the same amount)", permissions=["retry"])
    def retry_refund(self, request, queryset):
        actor = Actor.staff(request.user)
        run_for_each_selected(self, request, queryset, lambda pk: refund_retry(actor=actor, refund_id=pk),
                              done="retried as a new refund")
