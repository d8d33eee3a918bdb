"""The review queue: its order, its search and its columns.

Every column reads only the proof row and the escrow and milestone that come
with it (``list_select_related``), so the changelist runs a fixed number of
queries whatever the page size; thumbnails are separate, cached requests
(:mod:`proofs.admin.preview`).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.db.models import Case, IntegerField, Q, When
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from escrow.models import ProofType
from proofs.models import Proof, RiskLevel

__all__ = ["QUEUE_ORDER", "RISK_RANK", "QueueColumns", "search_query"]

# Queue order: the riskiest first (high, medium, low, not scored), then the oldest.
RISK_RANK = Case(
    When(ai_risk_level=RiskLevel.HIGH, then=0),
    When(ai_risk_level=RiskLevel.MEDIUM, then=1),
    When(ai_risk_level=RiskLevel.LOW, then=2),
    default=3,
    output_field=IntegerField(),
)
# Review priority (proofs.review_priority: failed checks, photo warnings, re-use, AI risk) first, then the oldest.
QUEUE_ORDER = ("-review_priority", "created_at", "pk")  # proof_review_queue_idx serves it (status, -priority, age)
RISK_COLOURS = {RiskLevel.HIGH: "#ba2121", RiskLevel.MEDIUM: "#c86400", RiskLevel.LOW: "#2e7d32"}
_HEX = frozenset("0123456789abcdef")


def search_query(term: str) -> Q | None:
    """What the search box finds: an invoice number (exact, any case), an
    escrow id, or a SHA-256 prefix of 6 to 64 hex characters. ``None`` for an
    empty term."""
    term = term.strip()
    if not term:
        return None
    query = Q(invoice_number__iexact=term)
    if term.isdigit() and len(term) <= 18:
        query |= Q(escrow_id=int(term))
    prefix = term.lower()
    if 6 <= len(prefix) <= 64 and set(prefix) <= _HEX:
        query |= Q(sha256__startswith=prefix)
    return query


def _short_age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _badge(text: str, colour: str) -> str:
    return format_html('<span class="kb-badge" style="background:{}">{}</span>', colour, text)


class QueueColumns:
    """The changelist's columns, for ``ProofAdmin.list_display``."""

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

    @admin.display(description="Priority", ordering="-review_priority")
    def priority_col(self, obj: Proof) -> str:
        reasons = ", ".join(obj.review_flags or []) or "nothing flagged"
        return format_html('<span class="kb-priority" title="{}">{}</span>', reasons, obj.review_priority)

    @admin.display(description="Flags")
    def flags_col(self, obj: Proof) -> str:
        flags = format_html_join(" ", '<span class="kb-flag">{}</span>',
                                 ((flag,) for flag in [*(obj.review_flags or []), *(obj.ai_flags or [])]))
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
