"""``ProofAdmin``: the proof review queue, the support reviewers' front page.

Read-only, like every admin here: a proof changes only through
``proofs.services`` (``proof_decide`` for a verdict, ``proof_mark_ai_reviewed``
for AI-flag triage, ``proof_requeue_ocr``/``proof_requeue_ai`` for operations),
each writing an audit row that names the staff user. There is no bulk
approval, by design: a flagged proof is decided one at a time, with a note.

This class wires the pieces together and checks permissions; what each page
shows lives beside it: :mod:`~proofs.admin.filters`, :mod:`~proofs.admin.queue`
(order, search, columns), :mod:`~proofs.admin.review` (a proof's page),
:mod:`~proofs.admin.triage`, :mod:`~proofs.admin.preview` (thumbnails).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from escrow.models import ProofType
from kobatela.core.actor import Actor
from kobatela.core.admin_site import ReadOnlyAdminMixin, run_for_each_selected
from kobatela.core.errors import DomainError
from payments.models import Payment, PaymentStatus
from proofs import services
from proofs.admin.filters import AgeFilter, CurrencyFilter, QueueFilter, RiskFilter
from proofs.admin.preview import preview_response
from proofs.admin.queue import QUEUE_ORDER, RISK_RANK, QueueColumns, search_query
from proofs.admin.review import ReviewFields, review_context
from proofs.admin.triage import triage_context
from proofs.models import Proof

__all__ = ["ProofAdmin"]

NOTE_MAX_LENGTH = 2000  # as the API's DecisionSerializer


def blocked_payouts_summary() -> dict[str, int]:
    """Approved payouts waiting for their payee, by reason (shown above the review queue)."""
    rows = (Payment.objects.filter(status__in=[PaymentStatus.PENDING, PaymentStatus.ERROR]).exclude(blocked_reason="")
            .values("blocked_reason").annotate(n=Count("id")).order_by("blocked_reason"))
    return {row["blocked_reason"]: row["n"] for row in rows}


@admin.register(Proof)
class ProofAdmin(QueueColumns, ReviewFields, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["preview", "proof_id", "escrow_col", "milestone_col", "type", "priority_col", "risk_col",
                    "flags_col", "checks_col", "age_col"]
    list_display_links = ["preview", "proof_id"]
    list_select_related = ["escrow", "milestone"]
    list_filter = [QueueFilter, "status", "type", RiskFilter, "ocr_status", CurrencyFilter, AgeFilter]
    search_fields = ["invoice_number"]  # shows the box; get_search_results says what is searched
    search_help_text = "Escrow id, SHA-256 prefix (6+ hex characters) or invoice number."
    list_per_page = 50
    list_max_show_all = 200
    show_full_result_count = False  # one COUNT per page, not two
    actions = ["mark_ai_reviewed", "requeue_ocr", "requeue_ai"]
    fieldsets = [
        ("Proof", {"fields": ["id", "status", "type", "escrow", "milestone", "owner", "content_type", "size", "sha256",
                              "stored_as", "created_at", "metadata_masked", "validation"]}),
        ("Photo (EXIF)", {"fields": ["exif_captured_at", "exif_lat", "exif_lng", "distance_m"]}),
        ("Document (OCR)", {"fields": ["ocr_status", "ocr_source", "ocr_attempts", "ocr_error", "ocr_updated_at",
                                       "invoice_amount", "invoice_currency", "invoice_date", "invoice_number",
                                       "invoice_supplier", "invoice_iban_masked", "backend_checks"]}),
        ("Review", {"fields": ["review_priority", "review_flags"]}),
        ("AI advisor", {"fields": ["ai_status", "ai_attempts", "ai_updated_at", "ai_risk_level", "ai_score", "ai_flags",
                                   "ai_explanation", "ai_error",
                                   "ai_checked_at", "ai_reviewed_at", "ai_reviewed_by"]}),
        ("Decision", {"fields": ["decided_by_label", "decided_by", "decided_at", "decision_note"]}),
        ("OCR text", {"fields": ["ocr_text_masked"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["id", "stored_as", "metadata_masked", "ocr_text_masked"]

    # -- who may do what (nothing is edited here) -------------------------------------

    def has_decide_permission(self, request) -> bool:
        return request.user.has_perm("proofs.decide_proof")

    def has_triage_permission(self, request) -> bool:
        return request.user.has_perm("proofs.triage_ai_flags")

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("proofs.reprocess_proof")

    # -- the queue --------------------------------------------------------------------

    def get_queryset(self, request) -> QuerySet[Proof]:
        # Annotated before ordering (ModelAdmin.get_queryset orders by get_ordering at once).
        queryset = self.model._default_manager.annotate(risk_rank=RISK_RANK).order_by(*self.get_ordering(request))
        match = request.resolver_match
        if match is not None and match.url_name == "proofs_proof_changelist":
            queryset = queryset.defer("ocr_text", "ai_explanation", "metadata")  # large, not shown in the list
        return queryset

    def get_ordering(self, request):
        return list(QUEUE_ORDER)

    def changelist_view(self, request, extra_context=None):
        queue = request.GET.get(QueueFilter.parameter_name, QueueFilter.default) == QueueFilter.default
        title = "Review queue: highest review priority first, then oldest" if queue else "Proofs"
        blocked = blocked_payouts_summary()
        return super().changelist_view(request, {"title": title, "blocked_payouts": blocked, **(extra_context or {})})

    def get_search_results(self, request, queryset, search_term):
        query = search_query(search_term)
        return (queryset if query is None else queryset.filter(query)), False

    def get_fieldsets(self, request, obj=None):
        # A photo has no OCR section, a document no EXIF one.
        skip = "Document (OCR)" if obj is not None and obj.type == ProofType.PHOTO else "Photo (EXIF)"
        return [fieldset for fieldset in super().get_fieldsets(request, obj) if fieldset[0] != skip]

    # -- actions: each calls a service that audits with the staff user ----------------

    @admin.action(description="Mark AI flags as reviewed", permissions=["triage"])
    def mark_ai_reviewed(self, request, queryset):
        marked = services.proof_mark_ai_reviewed(actor=Actor.staff(request.user),
                                                 proof_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{marked} flagged proof(s) marked as reviewed.", messages.SUCCESS)

    @admin.action(description="Send back to OCR", permissions=["reprocess"])
    def requeue_ocr(self, request, queryset):
        self._each(request, queryset, services.proof_requeue_ocr, "sent back to OCR")

    @admin.action(description="Run the AI advisor again", permissions=["reprocess"])
    def requeue_ai(self, request, queryset):
        self._each(request, queryset, services.proof_requeue_ai, "sent back to the AI advisor")

    def _each(self, request, queryset, service, done: str) -> None:
        actor = Actor.staff(request.user)
        run_for_each_selected(self, request, queryset, lambda pk: service(proof_id=pk, actor=actor), done=done)

    # -- extra views ------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/preview/<str:size>/", view(self.preview_view, cacheable=True),
                 name="proofs_proof_preview"),
            path("<int:object_id>/decide/", view(self.decide_view), name="proofs_proof_decide"),
            path("ai-triage/", view(self.triage_view), name="proofs_proof_ai_triage"),
            *super().get_urls(),
        ]

    def preview_view(self, request, object_id: int, size: str):
        """A downscaled JPEG of the proof (photo, scan, or a PDF's first page)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return preview_response(object_id=object_id, size=size, if_none_match=request.headers.get("If-None-Match"))

    def decide_view(self, request, object_id: int):
        """Approve or reject one proof (POST, CSRF-checked by admin_view)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_decide_permission(request):
            raise PermissionDenied
        decision = request.POST.get("decision")
        note = request.POST.get("note", "")
        if decision not in ("approve", "reject"):
            return HttpResponseBadRequest("decision must be approve or reject")
        change_url = reverse("admin:proofs_proof_change", args=[object_id])
        if len(note) > NOTE_MAX_LENGTH:
            messages.error(request, f"The note is limited to {NOTE_MAX_LENGTH} characters.")
            return redirect(change_url)
        try:
            proof = services.proof_decide(actor=Actor.staff(request.user), proof_id=object_id, decision=decision,
                                          note=note)
        except DomainError as exc:  # note_required, proof_already_decided, milestone_is_…: the service says why
            messages.error(request, exc.message)
            return redirect(change_url)
        messages.success(request, f"Proof #{proof.pk} {proof.status.lower()}.")
        return redirect(change_url)

    def triage_view(self, request):
        """Flagged proofs by flag type and risk, with a bulk "mark reviewed" (never a bulk approval)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        can_triage = self.has_triage_permission(request)
        if request.method == "POST":
            if not can_triage:
                raise PermissionDenied
            ids = [int(pk) for pk in request.POST.getlist("proof") if pk.isdigit()]
            marked = services.proof_mark_ai_reviewed(actor=Actor.staff(request.user), proof_ids=ids)
            messages.success(request, f"{marked} flagged proof(s) marked as reviewed.")
            return redirect(f"{request.path}?{request.GET.urlencode()}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "AI-flag triage",
            "can_triage": can_triage,
            **triage_context(request.GET),
        }
        return TemplateResponse(request, "admin/proofs/proof/ai_triage.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        proof = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if proof is not None:
            context.update(review_context(proof, can_decide=self.has_decide_permission(request)))
        return super().change_view(request, object_id, form_url, extra_context=context)
