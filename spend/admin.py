"""Usage mandates in the admin: read-only, with their purchases.

A mandate's budget is money (ledger account ``mandate:<id>``): it moves
only through ``spend.services`` (create, purchase, expire, revoke), each
audited. The admin shows; it edits nothing.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q

from kobatela.core.admin_site import ReadOnlyAdminMixin
from spend.models import Purchase, UsageMandate


class PurchaseInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Purchase
    fields = ["created_at", "merchant", "category", "amount", "currency", "idempotency_key"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("merchant", "category")


@admin.register(UsageMandate)
class UsageMandateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "sender", "beneficiary", "total_amount", "remaining_amount", "currency", "status", "sector",
                    "starts_at", "expires_at"]
    list_select_related = ["sender", "beneficiary"]
    list_filter = ["status", "sector", "currency"]
    search_fields = ["sender__email"]  # shows the box; get_search_results says what is searched
    search_help_text = "Mandate id, or the sender's or beneficiary's email."
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [PurchaseInline]
    fields = ["id", "sender", "beneficiary", "total_amount", "remaining_amount", "currency", "status", "sector",
              "starts_at", "expires_at", "allowed_categories", "allowed_merchants", "ended_at", "created_at",
              "updated_at"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(sender__email__iexact=term) | Q(beneficiary__email__iexact=term)
        if term.isdigit() and len(term) <= 18:
            query |= Q(pk=int(term))
        return queryset.filter(query), False
