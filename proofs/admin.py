"""The proof review queue: the support reviewers' front page in the admin.

Read-only, like every admin here: a proof changes only through
``proofs.services`` (``proof_decide`` for a verdict, ``proof_mark_ai_reviewed``
for AI-flag triage, ``proof_requeue_ocr``/``proof_requeue_ai`` for operations),
each writing an audit row that names the staff user. There is no bulk
approval, by design: a flagged proof is decided one at a time, with a note.

The changelist runs a fixed number of queries whatever the page size: the
escrow and milestone come with the rows (``list_select_related``), every
column reads only those rows, the filters have fixed choices, and
thumbnails are separate requests to ``preview_view`` (cached).
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Case, IntegerField, Q, QuerySet, When
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from escrow.models import ProofType
from kobatela.accounts.actor import Actor
from kobatela.core.admin_site import ReadOnlyAdminMixin
from kobatela.core.errors import DomainError
from kobatela.core.masking import mask_data, mask_text
from proofs import previews, services
from proofs.document_checks import CHECK_NAMES
from proofs.models import Proof, ProofStatus, RiskLevel

NOTE_MAX_LENGTH = 2000  # as the API's DecisionSerializer

# Queue order: the riskiest first (high, medium, low, not scored), then the oldest.
RISK_RANK = Case(
    When(ai_risk_level=RiskLevel.HIGH, then=0),
    When(ai_risk_level=RiskLevel.MEDIUM, then=1),
    When(ai_risk_level=RiskLevel.LOW, then=2),
    default=3,
    output_field=IntegerField(),
)
FLAGGED = Q(ai_risk_level__in=[RiskLevel.MEDIUM, RiskLevel.HIGH]) | ~Q(ai_flags=[])
RISK_COLOURS = {RiskLevel.HIGH: "#ba2121", RiskLevel.MEDIUM: "#c86400", RiskLevel.LOW: "#2e7d32"}
CHECK_LABELS = {"amount": "Amount", "currency": "Currency", "iban_last4": "IBAN (last 4)", "date": "Invoice date",
                "supplier": "Supplier"}


# --- filters --------------------------------------------------------------------------


class QueueFilter(admin.SimpleListFilter):
    """Pending proofs unless asked otherwise: the changelist opens as the queue."""

    title = "queue"
    parameter_name = "queue"
    default = "pending"

    def lookups(self, request, model_admin):
        return [("pending", "Waiting for review"), ("decided", "Decided"), ("all", "All proofs")]

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
            return queryset.exclude(status=ProofStatus.PENDING)
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


# --- the admin ---------------------------------------------------------------------------


def _short_age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _badge(text: str, colour: str) -> str:
    return format_html('<span class="kb-badge" style="background:{}">{}</span>', colour, text)


@admin.register(Proof)
class ProofAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["preview", "proof_id", "escrow_col", "milestone_col", "type", "risk_col", "flags_col", "checks_col",
                    "age_col"]
    list_display_links = ["preview", "proof_id"]
    list_select_related = ["escrow", "milestone"]
    list_filter = [QueueFilter, "type", RiskFilter, "ocr_status", CurrencyFilter, AgeFilter]
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
        ("AI advisor", {"fields": ["ai_status", "ai_risk_level", "ai_score", "ai_flags", "ai_explanation", "ai_error",
                                   "ai_checked_at", "ai_reviewed_at", "ai_reviewed_by"]}),
        ("Decision", {"fields": ["decided_by_label", "decided_by", "decided_at", "decision_note"]}),
        ("OCR text", {"fields": ["ocr_text_masked"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["id", "stored_as", "metadata_masked", "ocr_text_masked"]

    # -- nothing is edited here ---------------------------------------------------------

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
        return ["risk_rank", "created_at", "pk"]

    def changelist_view(self, request, extra_context=None):
        queue = request.GET.get(QueueFilter.parameter_name, QueueFilter.default) == QueueFilter.default
        title = "Review queue: riskiest first, then oldest" if queue else "Proofs"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def get_fieldsets(self, request, obj=None):
        # A photo has no OCR section, a document no EXIF one.
        skip = "Document (OCR)" if obj is not None and obj.type == ProofType.PHOTO else "Photo (EXIF)"
        return [fieldset for fieldset in super().get_fieldsets(request, obj) if fieldset[0] != skip]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        query = Q(invoice_number__iexact=term)
        if term.isdigit() and len(term) <= 18:
            query |= Q(escrow_id=int(term))
        prefix = term.lower()
        if 6 <= len(prefix) <= 64 and all(c in "0123456789abcdef" for c in prefix):
            query |= Q(sha256__startswith=prefix)
        return queryset.filter(query), False

    @admin.display(description="")
    def preview(self, obj: Proof) -> str:
        url = reverse("admin:proofs_proof_preview", args=[obj.pk, "thumb"])
        return format_html('<img class="kb-thumb" src="{}" alt="proof #{}" loading="lazy" width="64" height="64">',
                           url, obj.pk)

    @admin.display(description="Proof", ordering="pk")
    def proof_id(self, obj: Proof) -> str:
        return f"#{obj.pk}"

    @admin.display(description="Escrow", ordering="escrow_id")
    def escrow_col(self, obj: Proof) -> str:
        url = reverse("admin:escrow_escrowagreement_change", args=[obj.escrow_id])
        return format_html('<a href="{}">#{}</a>', url, obj.escrow_id)

    @admin.display(description="Milestone")
    def milestone_col(self, obj: Proof) -> str:
        return format_html('<span style="white-space:nowrap">#{} · {} {}</span>', obj.milestone.idx,
                           obj.milestone.amount, obj.escrow.currency)

    @admin.display(description="AI risk", ordering="risk_rank")
    def risk_col(self, obj: Proof) -> str:
        if obj.ai_risk_level:
            score = f" {obj.ai_score}" if obj.ai_score is not None else ""
            return _badge(f"{obj.ai_risk_level}{score}", RISK_COLOURS[obj.ai_risk_level])
        labels = {"QUEUED": "AI pending", "FAILED": "AI failed", "DISABLED": "AI off"}
        return _badge(labels.get(obj.ai_status, "—"), "#888")

    @admin.display(description="Flags")
    def flags_col(self, obj: Proof) -> str:
        flags = format_html_join(" ", '<span class="kb-flag">{}</span>', ((flag,) for flag in obj.ai_flags or []))
        if obj.ai_reviewed_at:
            flags = format_html('{} <span title="AI flags reviewed">✓ reviewed</span>', flags)
        return flags

    @admin.display(description="Checks")
    def checks_col(self, obj: Proof) -> str:
        if obj.type == ProofType.PHOTO:
            warnings = [w.get("code", "?") for w in (obj.validation or {}).get("warnings", [])]
            return format_html("photo: {}", ", ".join(warnings) if warnings else "EXIF ok")
        checks = obj.backend_checks or {}
        if not checks:
            return format_html("OCR {}", obj.ocr_status.lower())
        failing = [name for name, check in checks.get("checks", {}).items() if check.get("status") in ("fail", "missing")]
        overall = checks.get("overall", "?")
        colour = {"pass": "#2e7d32", "fail": "#ba2121"}.get(overall, "#c86400")
        return format_html('<span style="color:{}">{}</span> {}', colour, overall, ", ".join(failing))

    @admin.display(description="Age", ordering="created_at")
    def age_col(self, obj: Proof) -> str:
        return format_html('<span title="{}" style="white-space:nowrap">{}</span>',
                           obj.created_at.isoformat(timespec="seconds"), _short_age(timezone.now() - obj.created_at))

    @admin.display(description="Stored as")
    def stored_as(self, obj: Proof) -> str:
        return obj.file.name  # the name only: the file itself is shown through the preview

    # The raw OCR text holds the full IBAN (kept for reprocessing); people see it masked, like logs and the AI.
    @admin.display(description="OCR text (masked)")
    def ocr_text_masked(self, obj: Proof) -> str:
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', mask_text(obj.ocr_text or ""))

    @admin.display(description="Client metadata (masked, never trusted)")
    def metadata_masked(self, obj: Proof) -> str:
        return format_html("<pre>{}</pre>", json.dumps(mask_data(obj.metadata or {}), indent=2, sort_keys=True,
                                                       ensure_ascii=False))

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
        ok, refused = 0, []
        for pk in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                service(proof_id=pk, actor=actor)
                ok += 1
            except DomainError as exc:
                refused.append(f"#{pk} ({exc.code})")
        if ok:
            self.message_user(request, f"{ok} proof(s) {done}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Refused: {', '.join(refused)}.", messages.ERROR)

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
        if size not in previews.SIZES:
            raise Http404("No such preview size.")
        row = Proof.objects.filter(pk=object_id).values("sha256", "file", "content_type").first()
        if row is None:
            raise Http404("No such proof.")
        etag = f'"{row["sha256"][:32]}-{size}"'
        if request.headers.get("If-None-Match") == etag:
            response = HttpResponse(status=304)
            real = True
        else:
            jpeg, real = previews.proof_preview(sha256=row["sha256"], file_name=row["file"],
                                                content_type=row["content_type"], size=size)
            response = HttpResponse(jpeg, content_type="image/jpeg")
            response["Content-Disposition"] = f'inline; filename="proof-{object_id}-{size}.jpg"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'"
        if real:  # the file behind a proof never changes
            response["ETag"] = etag
            response["Cache-Control"] = "private, max-age=86400"
        else:
            response["Cache-Control"] = "private, no-store"
        return response

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

        params = {"status": request.GET.get("status", "pending"), "reviewed": request.GET.get("reviewed", "no"),
                  "flag": request.GET.get("flag", ""), "risk": request.GET.get("risk", "")}
        base = Proof.objects.filter(FLAGGED)
        if params["status"] == "pending":
            base = base.filter(status=ProofStatus.PENDING)
        if params["reviewed"] == "no":
            base = base.filter(ai_reviewed_at__isnull=True)
        elif params["reviewed"] == "yes":
            base = base.filter(ai_reviewed_at__isnull=False)

        summary: dict[str, dict[str, int]] = {}
        for flags, risk in base.values_list("ai_flags", "ai_risk_level").iterator(chunk_size=2000):
            for flag in flags or ["(no flag)"]:
                row = summary.setdefault(flag, {"high": 0, "medium": 0, "low": 0, "none": 0, "total": 0})
                row[risk or "none"] += 1
                row["total"] += 1

        listed = base.select_related("escrow", "milestone").defer("ocr_text", "metadata").annotate(risk_rank=RISK_RANK)
        if params["risk"] in RiskLevel.values:
            listed = listed.filter(ai_risk_level=params["risk"])
        if params["flag"]:
            if connection.features.supports_json_field_contains:
                listed = listed.filter(ai_flags__contains=[params["flag"]])
            else:  # SQLite (the embedded default): match in Python
                ids = [pk for pk, flags in base.values_list("pk", "ai_flags") if params["flag"] in (flags or [])]
                listed = listed.filter(pk__in=ids)
        page = Paginator(listed.order_by("risk_rank", "created_at", "pk"), 100).get_page(request.GET.get("page"))

        def link(**change):
            return "?" + urlencode({k: v for k, v in {**params, **change}.items() if v})

        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "AI-flag triage",
            "params": params,
            "can_triage": can_triage,
            "summary": [
                {"flag": flag, **counts, "link": link(flag="" if flag == "(no flag)" else flag, risk="", page="")}
                for flag, counts in sorted(summary.items(), key=lambda item: (-item[1]["total"], item[0]))
            ],
            "page": page,
            "risk_links": [(level, link(risk=level, page="")) for level in ("", *RiskLevel.values)],
            "status_links": [("pending", link(status="pending", page="")), ("all", link(status="all", page=""))],
            "reviewed_links": [(v, link(reviewed=v, page="")) for v in ("no", "yes", "all")],
            "page_links": {"previous": link(page=page.previous_page_number()) if page.has_previous() else None,
                           "next": link(page=page.next_page_number()) if page.has_next() else None},
        }
        return TemplateResponse(request, "admin/proofs/proof/ai_triage.html", context)

    # -- the detail page --------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        proof = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if proof is not None:
            context.update(self._review_context(request, proof))
        return super().change_view(request, object_id, form_url, extra_context=context)

    def _review_context(self, request, proof: Proof) -> dict:
        milestone = proof.milestone
        context: dict = {
            "proof": proof,
            "preview_url": reverse("admin:proofs_proof_preview", args=[proof.pk, "large"]),
            "decide_url": reverse("admin:proofs_proof_decide", args=[proof.pk]),
            "queue_url": reverse("admin:proofs_proof_changelist"),
            "audit_url": reverse("admin:audit_auditlog_changelist") + "?" + urlencode(
                {"entity_type": "proofs.proof", "entity_id": proof.pk}),
            "can_decide": proof.status == ProofStatus.PENDING and self.has_decide_permission(request),
            "note_required": proof.ai_flagged,
            "milestone": milestone,
            "currency": proof.escrow.currency,
            "previous": list(Proof.objects.filter(milestone_id=proof.milestone_id).exclude(pk=proof.pk)
                             .select_related("decided_by").only("pk", "status", "type", "created_at", "decided_at",
                                                               "decided_by_label", "decision_note", "decided_by__email",
                                                               "ai_risk_level").order_by("-created_at")[:20]),
        }
        if proof.type == ProofType.PHOTO or proof.exif_lat is not None:
            context["photo"] = self._photo_context(proof, milestone)
        if proof.type != ProofType.PHOTO:
            context["invoice_rows"] = self._invoice_rows(proof, milestone)
        return context

    @staticmethod
    def _photo_context(proof: Proof, milestone) -> dict:
        photo: dict = {"captured_at": proof.exif_captured_at, "lat": proof.exif_lat, "lng": proof.exif_lng,
                       "distance_m": proof.distance_m, "warnings": (proof.validation or {}).get("warnings", [])}
        if proof.exif_lat is not None and proof.exif_lng is not None:
            photo["osm_url"] = (f"https://www.openstreetmap.org/?mlat={proof.exif_lat}&mlon={proof.exif_lng}"
                                f"#map=17/{proof.exif_lat}/{proof.exif_lng}")
        if milestone.has_geofence:
            photo["geofence"] = {"lat": milestone.geofence_lat, "lng": milestone.geofence_lng,
                                 "radius_m": milestone.geofence_radius_m}
            if proof.distance_m is not None:
                margin = (proof.distance_m - milestone.geofence_radius_m).quantize(Decimal("0.01"))
                photo["inside"] = margin <= 0
                photo["edge_m"] = abs(margin)
        return photo

    @staticmethod
    def _invoice_rows(proof: Proof, milestone) -> list[dict]:
        """Found next to expected, per check; from backend_checks when OCR ran."""
        checks = (proof.backend_checks or {}).get("checks", {})
        requirements = milestone.proof_requirements or {}
        found_now = {"amount": proof.invoice_amount, "currency": proof.invoice_currency, "iban_last4":
                     proof.invoice_iban_last4, "date": proof.invoice_date, "supplier": proof.invoice_supplier}
        expected_now = {"amount": requirements.get("expected_amount"), "currency": requirements.get("currency"),
                        "iban_last4": requirements.get("iban_last4"), "supplier": requirements.get("supplier"),
                        "date": (f"{requirements.get('date_from', '..')}/{requirements.get('date_to', '..')}"
                                 if requirements.get("date_from") or requirements.get("date_to") else None)}
        rows = []
        for name in CHECK_NAMES:
            check = checks.get(name)
            if check is not None:
                status, expected, found = check.get("status"), check.get("expected"), check.get("found")
            else:
                status, expected, found = "not checked", expected_now[name], found_now[name] or None
            rows.append({"label": CHECK_LABELS[name], "expected": expected, "found": found, "status": status,
                         "mismatch": status in ("fail", "missing")})
        return rows
