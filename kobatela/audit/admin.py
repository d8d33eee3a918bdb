"""Audit log and alerts in the admin.

The audit log is evidence: nobody adds, edits or deletes a row here, not even
a superuser (the database refuses it anyway). Reviewers browse and filter it,
verify the hash chain on demand (O(n), so only when asked; the last result
shows on the changelist, read from its own audit row) and export the
filtered rows as CSV, streamed in chunks so 100k rows cost no more memory
than 2,000. Exports and verifications are themselves audited.

Alerts move only through ``alert_transition`` (acknowledge, resolve), which
records the staff user.
"""

from __future__ import annotations

import csv
import json

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponseBadRequest, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from kobatela.audit import services as audit
from kobatela.audit.models import Alert, AuditLog, AuditSeal
from kobatela.core.actor import Actor
from kobatela.core.admin_site import ReadOnlyAdminMixin, run_for_each_selected

# row_hash: the row's hash in the sealed chain (empty until the sealing job has chained it).
CSV_COLUMNS = ["id", "created_at", "actor", "action", "entity_type", "entity_id", "request_id", "data", "row_hash"]
EXPORT_CHUNK_ROWS = 2000
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA_START) else text


class _Echo:
    """A file-like object whose write returns the line: csv.writer then formats without buffering."""

    def write(self, value: str) -> str:
        return value


class ActorKindFilter(admin.SimpleListFilter):
    title = "actor kind"
    parameter_name = "actor_kind"

    def lookups(self, request, model_admin):
        return [("staff", "Staff (admin)"), ("apikey", "API key"), ("system", "System")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(actor__startswith=f"{self.value()}:")
        return queryset


class ActorFilter(admin.SimpleListFilter):
    """Staff actors by name; any other actor (``apikey:12``…) works as ``?actor=`` too."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        User = get_user_model()
        labels = list(AuditLog.objects.filter(actor__startswith="staff:").order_by("actor")
                      .values_list("actor", flat=True).distinct())
        ids = [label.split(":", 1)[1] for label in labels if label.split(":", 1)[1].isdigit()]
        emails = dict(User.objects.filter(pk__in=ids).values_list("pk", "email"))
        choices = [(label, f"{label} ({emails.get(int(label[6:]), '?')})" if label[6:].isdigit() else label)
                   for label in labels]
        if self.value() and self.value() not in labels:
            choices.append((self.value(), self.value()))
        return choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(actor=self.value())
        return queryset


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "actor", "action", "entity", "request_id"]
    list_filter = [ActorKindFilter, ActorFilter, "action", "entity_type"]
    search_fields = ["=actor", "^action", "=entity_type", "=entity_id", "=request_id"]
    search_help_text = "Exact actor (staff:3), action prefix (proof.), entity type or id, request id."
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    fields = ["id", "created_at", "actor", "action", "entity_type", "entity_id", "entity", "request_id", "data_pretty",
              "row_hash"]
    readonly_fields = fields

    @admin.display(description="Hash in the sealed chain")
    def row_hash(self, obj: AuditLog) -> str:
        return AuditSeal.objects.filter(seq=obj.pk).values_list("row_hash", flat=True).first() or "(not sealed yet)"

    @admin.display(description="Entity")
    def entity(self, obj: AuditLog) -> str:
        label = f"{obj.entity_type}:{obj.entity_id}"
        try:
            model = apps.get_model(obj.entity_type)
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.entity_id])
        except (LookupError, ValueError, NoReverseMatch):
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="Data (masked when recorded)")
    def data_pretty(self, obj: AuditLog) -> str:
        return format_html("<pre style=\"white-space:pre-wrap\">{}</pre>",
                           json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False))

    # -- chain verification and export --------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("verify-chain/", view(self.verify_chain_view), name="audit_auditlog_verify_chain"),
            path("export.csv", view(self.export_view), name="audit_auditlog_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        last = (AuditLog.objects.filter(action="audit.chain_verified").order_by("-id")
                .values("created_at", "actor", "data").first())
        return super().changelist_view(request, {**(extra_context or {}), "chain_status": last})

    def verify_chain_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = audit.audit_chain_verify()
        audit.record(Actor.staff(request.user), "audit.chain_verified", ("audit.chain", "auditlog"),
                     {"ok": report.ok, "checked": report.checked, "first_broken_id": report.first_broken_id,
                      "reason": report.reason})
        if report.ok:
            messages.success(request, f"Audit chain intact: {report.checked} rows verified.")
        else:
            messages.error(request, f"Audit chain BROKEN at row id={report.first_broken_id}: {report.reason} "
                                    f"({report.checked} rows read).")
        return redirect("admin:audit_auditlog_changelist")

    def export_view(self, request):
        """CSV of the rows the changelist shows with the same filters, all pages."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter.")
        queryset = changelist.get_queryset(request)
        audit.record(Actor.staff(request.user), "audit.exported", ("audit.export", "csv"),
                     {"filters": {key: request.GET.getlist(key) for key in request.GET}})
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(CSV_COLUMNS)
            batch: list[str] = []
            sealed = queryset.annotate(row_hash=Coalesce(
                Subquery(AuditSeal.objects.filter(seq=OuterRef("pk")).values("row_hash")[:1]), Value("")))
            for row in sealed.values_list(*CSV_COLUMNS).iterator(chunk_size=EXPORT_CHUNK_ROWS):
                batch.append(writer.writerow([row[0], row[1].isoformat(), *(_csv_cell(value) for value in row[2:])]))
                if len(batch) >= 500:
                    yield "".join(batch)
                    batch.clear()
            if batch:
                yield "".join(batch)

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
        response["X-Content-Type-Options"] = "nosniff"
        return response


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "severity", "type", "status", "message", "acknowledged_by", "resolved_by"]
    list_select_related = ["acknowledged_by", "resolved_by"]
    list_filter = ["status", "severity", "type"]
    search_fields = ["type", "message"]
    date_hierarchy = "created_at"
    actions = ["acknowledge", "resolve"]
    readonly_fields = ["data_pretty"]
    fields = ["type", "severity", "status", "message", "data_pretty", "created_at", "acknowledged_by", "acknowledged_at",
              "resolved_by", "resolved_at"]

    def has_acknowledge_permission(self, request) -> bool:
        return request.user.has_perm("audit.acknowledge_alert")

    @admin.display(description="Data")
    def data_pretty(self, obj: Alert) -> str:
        return format_html("<pre style=\"white-space:pre-wrap\">{}</pre>",
                           json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False))

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        self._move(request, queryset, Alert.Status.ACKNOWLEDGED)

    @admin.action(description="Resolve selected alerts", permissions=["acknowledge"])
    def resolve(self, request, queryset):
        self._move(request, queryset, Alert.Status.RESOLVED)

    def _move(self, request, queryset, to: str) -> None:
        run_for_each_selected(self, request, queryset,
                              lambda pk: audit.alert_transition(alert_id=pk, to=to, staff_user=request.user),
                              done=to.lower(), refused_prefix="Unchanged", refused_level=messages.WARNING)