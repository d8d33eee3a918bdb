"""Payouts in the admin: read-only; "Retry payout" is the one action.

A retry is ``payment_execute`` with the staff user as actor: it sends a
PENDING or ERROR payout to the PSP under the payout's own idempotency key
(a FAILED or RETURNED one under its next generation's)
(so the provider pays it once however often it is retried) and audits the
outcome with the staff user. Only ``payments.retry_payment`` (Operations)
may do it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from kobatela.core.actor import Actor
from kobatela.core.admin_site import ReadOnlyAdminMixin
from kobatela.core.errors import DomainError
from payments import services
from payments.models import Payment, PaymentStatus


class BlockedFilter(admin.SimpleListFilter):
    """Payouts waiting for their payee's verification (payments.payees)."""

    title = "waiting for the payee"
    parameter_name = "blocked"

    def lookups(self, request, model_admin):
        return [("yes", "Waiting (payee not verified or paused)"), ("no", "Not waiting")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(blocked_reason="")
        if self.value() == "no":
            return queryset.filter(blocked_reason="")
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "escrow_col", "milestone_col", "amount", "currency", "status", "blocked_col", "failure_code",
                    "attempts", "last_error", "scheduled_for", "created_at", "settled_at"]
    list_select_related = ["milestone", "payee"]
    list_filter = ["status", BlockedFilter, "currency"]
    search_fields = ["psp_ref"]  # shows the box; get_search_results says what is searched
    search_help_text = "Payment id, escrow id or PSP reference."
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["retry_payout"]
    readonly_fields = ["escrow_col", "milestone_col", "blocked_col"]
    fields = ["id", "owner", "escrow_col", "milestone_col", "amount", "currency", "destination", "payee", "status",
              "blocked_col", "psp_ref", "failure_code", "scheduled_for", "attempts", "payout_generation", "last_error",
              "next_attempt_at", "gave_up_at", "settled_at", "created_at", "updated_at"]

    @admin.display(description="waiting because")
    def blocked_col(self, obj: Payment) -> str:
        if not obj.blocked_reason:
            return "—"
        why = {"payee_not_verified": "payee not verified", "payee_paused": "payee paused"}.get(obj.blocked_reason,
                                                                                              obj.blocked_reason)
        return f"{why} (user #{obj.payee_id}: {obj.payee.payout_status if obj.payee_id else '?'})"

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("payments.retry_payment")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(psp_ref=term)
        if term.isdigit() and len(term) <= 18:
            query |= Q(pk=int(term)) | Q(escrow_id=int(term))
        return queryset.filter(query), False

    @admin.display(description="Escrow", ordering="escrow_id")
    def escrow_col(self, obj: Payment) -> str:
        if obj.escrow_id is None:
            return "—"
        return format_html('<a href="{}">#{}</a>', reverse("admin:escrow_escrowagreement_change", args=[obj.escrow_id]),
                           obj.escrow_id)

    @admin.display(description="Milestone")
    def milestone_col(self, obj: Payment) -> str:
        return str(obj.milestone.idx) if obj.milestone_id else "—"

    @admin.action(description="Retry payout", permissions=["retry"])
    def retry_payout(self, request, queryset):
        for pk in queryset.order_by("pk").values_list("pk", flat=True):
            self._retry(request, pk)

    def _retry(self, request, payment_id: int) -> None:
        actor = Actor.staff(request.user)
        try:
            # scoped_to: an explicit request, so a payout that is not retryable says why instead of passing silently.
            payment = services.payment_execute(payment_id=payment_id, actor=actor, scoped_to=actor)
        except DomainError as exc:
            self.message_user(request, f"Payout #{payment_id} not retried: {exc.message}", messages.ERROR)
            return
        level = messages.SUCCESS if payment.status in (PaymentStatus.SENT, PaymentStatus.SETTLED) else messages.WARNING
        detail = f" ({payment.last_error})" if payment.status == PaymentStatus.ERROR else ""
        self.message_user(request, f"Payout #{payment_id}: {payment.status}{detail}.", level)

    def get_urls(self):
        return [
            path("<int:object_id>/retry/", self.admin_site.admin_view(self.retry_view), name="payments_payment_retry"),
            *super().get_urls(),
        ]

    def retry_view(self, request, object_id: int):
        """The detail page's "Retry payout" button (POST, CSRF-checked by admin_view)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_retry_permission(request):
            raise PermissionDenied
        self._retry(request, object_id)
        return redirect("admin:payments_payment_change", object_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        if self.has_retry_permission(request) and str(object_id).isdigit():
            status = Payment.objects.filter(pk=object_id).values_list("status", flat=True).first()
            if status in Payment.EXECUTABLE | Payment.RETRYABLE_VERDICTS:
                context["retry_url"] = reverse("admin:payments_payment_retry", args=[object_id])
        return super().change_view(request, object_id, form_url, extra_context=context)
