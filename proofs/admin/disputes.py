"""The dispute queue (support): OPEN disputes oldest first, with the amount each
holds; a dispute's page shows its messages and the escrow's proofs side by
side, and a resolve form that calls ``escrow.disputes.dispute_resolve`` — the
service the API calls — after showing the split for confirmation.

It lives with the proofs back office because it shows the escrow's proofs
(thumbnails, status, who decided): proofs sits above escrow, so it may read
both; escrow may not import proofs.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from escrow.disputes import dispute_resolve
from escrow.models import Dispute, DisputeMessage, DisputeStatus
from kobatela.core.actor import Actor
from kobatela.core.admin_site import ReadOnlyAdminMixin
from kobatela.core.errors import DomainError
from proofs.models import Proof


class DisputeMessageInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DisputeMessage
    extra = 0
    can_delete = False
    fields = ["created_at", "author", "body"]
    readonly_fields = fields
    ordering = ["created_at", "id"]


class ResolveForm(forms.Form):
    release_amount = forms.DecimalField(min_value=Decimal("0"), max_digits=18, decimal_places=2,
                                        label="Release to the provider")
    refund_amount = forms.DecimalField(min_value=Decimal("0"), max_digits=18, decimal_places=2,
                                       label="Refund to the client")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label="Note (why)")


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "escrow_col", "opened_by", "amount_held", "status", "messages_col", "created_at", "age_col"]
    list_select_related = ["escrow"]
    list_filter = ["status", "opened_by"]
    ordering = ["created_at", "id"]  # the oldest first: the queue
    inlines = [DisputeMessageInline]
    fields = ["id", "escrow_col", "status", "opened_by", "opened_by_label", "reason", "amount_held", "milestones_col",
              "release_amount", "refund_amount", "resolution_note", "resolved_by", "resolved_at", "created_at"]
    readonly_fields = fields

    def has_resolve_permission(self, request) -> bool:
        return request.user.has_perm("escrow.resolve_dispute")

    def changelist_view(self, request, extra_context=None):
        if not request.GET:  # the queue: the open ones, unless a filter says otherwise
            return redirect(reverse("admin:escrow_dispute_changelist") + "?status__exact=OPEN")
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("messages", "milestones")

    @admin.display(description="Escrow", ordering="escrow_id")
    def escrow_col(self, obj: Dispute) -> str:
        return format_html('<a href="{}">#{} ({} {})</a>',
                           reverse("admin:escrow_escrowagreement_change", args=[obj.escrow_id]), obj.escrow_id,
                           obj.escrow.amount_total, obj.escrow.currency)

    @admin.display(description="Messages")
    def messages_col(self, obj: Dispute) -> int:
        return len(obj.messages.all())

    @admin.display(description="Milestones")
    def milestones_col(self, obj: Dispute) -> str:
        return ", ".join(f"{m.idx}. {m.label} ({m.amount})" for m in obj.milestones.all()) or "—"

    @admin.display(description="Open for")
    def age_col(self, obj: Dispute) -> str:
        hours = int((timezone.now() - obj.created_at).total_seconds() // 3600)
        return f"{hours // 24} d {hours % 24} h" if hours >= 24 else f"{hours} h"

    def get_urls(self):
        return [path("<int:object_id>/resolve/", self.admin_site.admin_view(self.resolve_view),
                     name="escrow_dispute_resolve"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        dispute = Dispute.objects.filter(pk=object_id).select_related("escrow").first() if str(object_id).isdigit() else None
        if dispute is not None:
            context["evidence"] = _proofs_of(dispute)
            if dispute.status == DisputeStatus.OPEN and self.has_resolve_permission(request):
                context["resolve_url"] = reverse("admin:escrow_dispute_resolve", args=[dispute.pk])
        return super().change_view(request, object_id, form_url, extra_context=context)

    def resolve_view(self, request, object_id: int):
        """GET: the form. POST ``preview``: the split, spelled out, with a confirm button.
        POST ``confirm``: ``dispute_resolve`` as the staff user, then the escrow's page."""
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        dispute = Dispute.objects.select_related("escrow__client", "escrow__provider").filter(pk=object_id).first()
        if dispute is None:
            return redirect("admin:escrow_dispute_changelist")
        form = ResolveForm(request.POST or None, initial={"release_amount": Decimal("0.00"),
                                                          "refund_amount": dispute.amount_held})
        confirming = False
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if data["release_amount"] + data["refund_amount"] != dispute.amount_held:
                form.add_error(None, f"The release and the refund must add up to {dispute.amount_held}.")
            elif "confirm" in request.POST:
                try:
                    dispute_resolve(actor=Actor.staff(request.user), dispute_id=dispute.pk, **_amounts(data))
                except DomainError as exc:
                    self.message_user(request, f"Not resolved: {exc.message}", messages.ERROR)
                    return redirect("admin:escrow_dispute_change", dispute.pk)
                self.message_user(request, f"Dispute #{dispute.pk} resolved: {data['release_amount']} released to the "
                                           f"provider, {data['refund_amount']} refunded to the client.", messages.SUCCESS)
                return redirect("admin:escrow_escrowagreement_change", dispute.escrow_id)
            else:
                confirming = True
        context = {**self.admin_site.each_context(request), "title": f"Resolve dispute #{dispute.pk}",
                   "dispute": dispute, "form": form, "confirming": confirming, "opts": self.model._meta,
                   "evidence": _proofs_of(dispute)}
        return TemplateResponse(request, "admin/escrow/dispute/resolve.html", context)


def _amounts(data: dict) -> dict:
    return {"release_amount": data["release_amount"], "refund_amount": data["refund_amount"], "note": data["note"]}


def _proofs_of(dispute: Dispute) -> list[dict]:
    """The escrow's proofs, newest first, for the side-by-side panel."""
    covered = set(dispute.milestones.values_list("pk", flat=True))
    proofs = Proof.objects.filter(escrow_id=dispute.escrow_id).select_related("milestone").order_by("-created_at")[:50]
    return [{"proof": p, "covered": p.milestone_id in covered,
             "url": reverse("admin:proofs_proof_change", args=[p.pk]),
             "thumb": reverse("admin:proofs_proof_preview", args=[p.pk, "thumb"])} for p in proofs]
