from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from escrow.models import ProofType


class ProofStatus(models.TextChoices):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    # Another proof of the same milestone was approved: this one left the queue
    # undecided, and its OCR/AI jobs stop (their claims refuse it).
    SUPERSEDED = "SUPERSEDED"


class ProofDecision(models.TextChoices):
    """A reviewer's verdict on a pending proof."""

    APPROVE = "approve"
    REJECT = "reject"


class OcrStatus(models.TextChoices):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # photos: nothing to read
    DISABLED = "DISABLED"  # OCR turned off, or no Tesseract for a scan


class AiStatus(models.TextChoices):
    NOT_APPLICABLE = "NOT_APPLICABLE"
    DISABLED = "DISABLED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class RiskLevel(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Proof(models.Model):
    """A file sent for a milestone, and everything the checks found in it.

    The raw OCR text is kept for reprocessing and the AI advisor; it never
    leaves through the API. Only the last 4 digits and a masked form of an
    IBAN are kept, never the IBAN.
    """

    Status = ProofStatus
    ALLOWED_TRANSITIONS = {
        ProofStatus.PENDING: frozenset({ProofStatus.APPROVED, ProofStatus.REJECTED, ProofStatus.SUPERSEDED}),
        ProofStatus.APPROVED: frozenset(),
        ProofStatus.REJECTED: frozenset(),
        ProofStatus.SUPERSEDED: frozenset(),
    }

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="proofs")
    escrow = models.ForeignKey("escrow.EscrowAgreement", on_delete=models.PROTECT, related_name="proofs")
    milestone = models.ForeignKey("escrow.Milestone", on_delete=models.PROTECT, related_name="proofs")
    type = models.CharField(max_length=16, choices=ProofType.choices)
    status = models.CharField(max_length=16, choices=ProofStatus.choices, default=ProofStatus.PENDING, db_index=True)
    file = models.FileField(upload_to="proofs/%Y/%m/", max_length=300)
    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=100)
    metadata = models.JSONField(default=dict, blank=True, help_text="Client metadata: informative, never trusted.")
    validation = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    exif_captured_at = models.DateTimeField(null=True, blank=True)
    exif_lat = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    exif_lng = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    distance_m = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)

    ocr_status = models.CharField(max_length=16, choices=OcrStatus.choices, default=OcrStatus.SKIPPED, db_index=True)
    ocr_attempts = models.PositiveSmallIntegerField(default=0)
    ocr_error = models.CharField(max_length=500, blank=True, default="")
    ocr_source = models.CharField(max_length=16, blank=True, default="")
    ocr_text = models.TextField(blank=True, default="")
    ocr_updated_at = models.DateTimeField(null=True, blank=True)
    invoice_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    invoice_currency = models.CharField(max_length=3, blank=True, default="")
    invoice_date = models.DateField(null=True, blank=True)
    invoice_number = models.CharField(max_length=100, blank=True, default="", db_index=True)
    invoice_supplier = models.CharField(max_length=200, blank=True, default="")
    invoice_iban_last4 = models.CharField(max_length=4, blank=True, default="")
    invoice_iban_masked = models.CharField(max_length=64, blank=True, default="")
    backend_checks = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    ai_status = models.CharField(max_length=16, choices=AiStatus.choices, default=AiStatus.NOT_APPLICABLE)
    ai_risk_level = models.CharField(max_length=8, choices=RiskLevel.choices, blank=True, default="", db_index=True)
    ai_score = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    ai_flags = models.JSONField(default=list, blank=True)
    ai_explanation = models.TextField(blank=True, default="")
    ai_error = models.CharField(max_length=200, blank=True, default="")
    ai_checked_at = models.DateTimeField(null=True, blank=True)
    # The AI job's claim (as OCR's): QUEUED → RUNNING by one worker, a sweep redoes lost or stuck ones.
    ai_attempts = models.PositiveSmallIntegerField(default=0)
    ai_updated_at = models.DateTimeField(null=True, blank=True)

    # One risk picture (proofs.review_priority): the queue sorts by it, highest first;
    # any flag means a decision needs a note.
    review_priority = models.PositiveSmallIntegerField(default=0)
    review_flags = models.JSONField(default=list, blank=True)

    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_by_label = models.CharField(max_length=100, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # AI-flag triage in the admin: a person looked at the advisor's flags. It
    # decides nothing (the decision still needs its note); it clears the triage list.
    ai_reviewed_at = models.DateTimeField(null=True, blank=True)
    ai_reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    # Sent through an upload link (by a provider without an account), else null.
    upload_link = models.ForeignKey("proofs.UploadLink", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="proofs")

    class Meta:
        permissions = [
            ("decide_proof", "Can approve or reject a proof"),
            ("triage_ai_flags", "Can mark a proof's AI flags as reviewed"),
            ("reprocess_proof", "Can send a proof back to OCR or the AI advisor"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="proof_size_positive"),
            models.CheckConstraint(condition=Q(ai_score__isnull=True) | Q(ai_score__gte=0, ai_score__lte=1),
                                   name="proof_ai_score_in_range"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="proof_queue_idx"),
                   models.Index(fields=["status", "-review_priority", "created_at"], name="proof_review_queue_idx")]

    def __str__(self) -> str:
        return f"Proof #{self.pk} {self.type} for escrow #{self.escrow_id} ({self.status})"

    @property
    def ai_pending(self) -> bool:
        return self.ai_status in (AiStatus.QUEUED, AiStatus.RUNNING)

    @property
    def note_reasons(self) -> list[str]:
        """Why a decision on this proof needs a written note (empty: it does not)."""
        reasons = list(self.review_flags or [])
        if self.ai_flagged and not any(r.startswith("ai_") for r in reasons):
            reasons.append("ai_flagged")
        if self.ai_pending:
            reasons.append("ai_pending")
        return reasons

    @property
    def ai_flagged(self) -> bool:
        """The advisor saw risk: a human decision then needs a written note."""
        return self.ai_risk_level in (RiskLevel.MEDIUM, RiskLevel.HIGH) or bool(self.ai_flags)


class UploadLinkStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    USED = "USED"


class UploadLink(models.Model):
    """A time-limited, capped link a provider without an account uploads one
    milestone's proofs through (``/u/{token}``).

    Only the SHA-256 of the token is kept (``token_hash``); the token is shown
    once, at creation. The status is computed from the row: revoked, else
    used up, else expired, else active.
    """

    escrow = models.ForeignKey("escrow.EscrowAgreement", on_delete=models.PROTECT, related_name="upload_links")
    milestone = models.ForeignKey("escrow.Milestone", on_delete=models.PROTECT, related_name="upload_links")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    max_uploads = models.PositiveSmallIntegerField()
    uploads_used = models.PositiveSmallIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by_label = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(max_uploads__gte=1, max_uploads__lte=20), name="upload_link_cap_1_to_20"),
            models.CheckConstraint(condition=Q(uploads_used__lte=models.F("max_uploads")),
                                   name="upload_link_never_over_cap"),
        ]

    def __str__(self) -> str:
        return f"Upload link #{self.pk} for milestone {self.milestone_id} of escrow #{self.escrow_id}"

    def status_at(self, now) -> str:
        if self.revoked_at is not None:
            return UploadLinkStatus.REVOKED
        if self.uploads_used >= self.max_uploads:
            return UploadLinkStatus.USED
        if self.expires_at <= now:
            return UploadLinkStatus.EXPIRED
        return UploadLinkStatus.ACTIVE


class ProofPhotoHash(models.Model):
    """A perceptual hash of an image proof (proofs.photo_trust): variant 0 is
    the whole picture, 1–5 its 5 %-cropped versions. ``band0``–``band3`` are
    the hash's four 16-bit quarters, each indexed: two hashes within 3 bits
    share at least one quarter exactly, so a re-use lookup is four index
    probes, then an exact Hamming distance on the few candidates."""

    proof = models.ForeignKey(Proof, on_delete=models.CASCADE, related_name="photo_hashes")
    variant = models.PositiveSmallIntegerField()
    phash = models.BigIntegerField()
    band0 = models.IntegerField(db_index=True)
    band1 = models.IntegerField(db_index=True)
    band2 = models.IntegerField(db_index=True)
    band3 = models.IntegerField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["proof", "variant"], name="proof_photo_hash_unique_variant")]

    def __str__(self) -> str:
        return f"phash {self.variant} of proof #{self.proof_id}"
