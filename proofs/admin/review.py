"""A proof's page: what a reviewer needs to decide it, next to the read-only
fields (the picture, the photo panel or the invoice found vs expected, the AI
verdict, the other proofs of the milestone).

The raw OCR text and the client's metadata hold full IBANs, emails and phone
numbers (kept for reprocessing): people see them masked, like logs and the AI.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from escrow.models import ProofType
from kobatela.core.masking import mask_data, mask_text
from proofs.admin.photo import photo_panel
from proofs.document_checks import CHECK_NAMES
from proofs.models import Proof, ProofStatus
from proofs.services import reason_in_words

__all__ = ["ReviewFields", "invoice_rows", "note_reasons_in_words", "review_context"]

CHECK_LABELS = {"amount": "Amount", "currency": "Currency", "iban_last4": "IBAN (last 4)", "date": "Invoice date",
                "supplier": "Supplier"}
PREVIOUS_SHOWN = 20


class ReviewFields:
    """Read-only fields of the detail page that are not plain model fields."""

    @admin.display(description="Stored as")
    def stored_as(self, obj: Proof) -> str:
        return obj.file.name  # the name only: the file itself is shown through the preview

    @admin.display(description="OCR text (masked)")
    def ocr_text_masked(self, obj: Proof) -> str:
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', mask_text(obj.ocr_text or ""))

    @admin.display(description="Client metadata (masked, never trusted)")
    def metadata_masked(self, obj: Proof) -> str:
        return format_html("<pre>{}</pre>", json.dumps(mask_data(obj.metadata or {}), indent=2, sort_keys=True,
                                                       ensure_ascii=False))


def note_reasons_in_words(proof: Proof) -> list[str]:
    """Why this proof's decision needs a note, as the service words it."""
    return [reason_in_words(reason) for reason in proof.note_reasons]


def review_context(proof: Proof, *, can_decide: bool) -> dict:
    """The template's context for ``proof``; ``can_decide``: the user holds the permission."""
    milestone = proof.milestone
    context: dict = {
        "proof": proof,
        "preview_url": reverse("admin:proofs_proof_preview", args=[proof.pk, "large"]),
        "decide_url": reverse("admin:proofs_proof_decide", args=[proof.pk]),
        "queue_url": reverse("admin:proofs_proof_changelist"),
        "audit_url": reverse("admin:audit_auditlog_changelist") + "?" + urlencode(
            {"entity_type": "proofs.proof", "entity_id": proof.pk}),
        "can_decide": proof.status == ProofStatus.PENDING and can_decide,
        "note_required": bool(proof.note_reasons),
        "note_reasons": note_reasons_in_words(proof),
        "milestone": milestone,
        "currency": proof.escrow.currency,
        "previous": list(Proof.objects.filter(milestone_id=proof.milestone_id).exclude(pk=proof.pk)
                         .select_related("decided_by").only("pk", "status", "type", "created_at", "decided_at",
                                                           "decided_by_label", "decision_note", "decided_by__email",
                                                           "ai_risk_level").order_by("-created_at")[:PREVIOUS_SHOWN]),
    }
    if proof.type == ProofType.PHOTO or proof.exif_lat is not None:
        context["photo"] = photo_panel(proof, milestone)
    if proof.type != ProofType.PHOTO:
        context["invoice_rows"] = invoice_rows(proof, milestone)
    return context


def invoice_rows(proof: Proof, milestone) -> list[dict]:
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
