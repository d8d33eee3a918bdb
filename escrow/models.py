from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q

from kobatela.core.money import money_field


class EscrowStatus(models.TextChoices):
    DRAFT = "DRAFT"
    FUNDED = "FUNDED"
    RELEASABLE = "RELEASABLE"
    RELEASED = "RELEASED"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"


class MilestoneStatus(models.TextChoices):
    WAITING = "WAITING"
    PENDING_REVIEW = "PENDING_REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PAID = "PAID"
    RESOLVED = "RESOLVED"  # a dispute resolution decided where its money went (release and/or refund)


class ProofType(models.TextChoices):
    PHOTO = "PHOTO"
    INVOICE = "INVOICE"
    PDF = "PDF"
    CONTRACT = "CONTRACT"


class EscrowAgreement(models.Model):
    """Money held for a client (the API account that owns it) until a provider proves delivery.

    ``amount_funded`` grows with deposits; ``amount_released`` with settled
    payouts; ``amount_refunded`` with what went back to the client. The
    ledger account ``escrow:<id>`` always holds funded − released − refunded
    (``manage.py reconcile`` proves it).
    """

    Status = EscrowStatus
    STATE_NOUN = "escrow"  # its name in the API and in error codes (escrow_is_funded)
    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        # DRAFT → REFUNDED: a partly funded escrow gives its deposits back.
        EscrowStatus.DRAFT: frozenset({EscrowStatus.FUNDED, EscrowStatus.CANCELLED, EscrowStatus.REFUNDED}),
        EscrowStatus.FUNDED: frozenset({EscrowStatus.RELEASABLE, EscrowStatus.RELEASED, EscrowStatus.REFUNDED}),
        EscrowStatus.RELEASABLE: frozenset({EscrowStatus.FUNDED, EscrowStatus.RELEASED, EscrowStatus.REFUNDED}),
        EscrowStatus.RELEASED: frozenset({EscrowStatus.RELEASABLE}),  # only when a settled payout is refunded
        EscrowStatus.REFUNDED: frozenset(),
        EscrowStatus.CANCELLED: frozenset(),
    }

    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="escrows_as_client")
    provider = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="escrows_as_provider")
    amount_total = money_field()
    amount_funded = money_field(default=0)
    amount_released = money_field(default=0)
    amount_refunded = money_field(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=EscrowStatus.choices, default=EscrowStatus.DRAFT, db_index=True)
    deadline_at = models.DateTimeField(db_index=True)
    release_conditions = models.JSONField(default=dict, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    deadline_handled_at = models.DateTimeField(null=True, blank=True)
    inspection_hours = models.PositiveIntegerField(
        default=0, help_text="An approved milestone pays out this many hours after its approval, unless disputed.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_total__gt=0), name="escrow_amount_total_positive"),
            models.CheckConstraint(condition=Q(amount_funded__gte=0), name="escrow_amount_funded_not_negative"),
            models.CheckConstraint(condition=Q(amount_funded__lte=F("amount_total")), name="escrow_never_overfunded"),
            models.CheckConstraint(
                condition=Q(amount_released__gte=0) & Q(amount_refunded__gte=0), name="escrow_outflows_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(amount_released__lte=F("amount_funded") - F("amount_refunded")),
                name="escrow_never_releases_more_than_held",
            ),
        ]

    def __str__(self) -> str:
        return f"Escrow #{self.pk} {self.amount_total} {self.currency} ({self.status})"


class Milestone(models.Model):
    Status = MilestoneStatus
    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        MilestoneStatus.WAITING: frozenset({MilestoneStatus.PENDING_REVIEW, MilestoneStatus.APPROVED,
                                            MilestoneStatus.RESOLVED}),
        MilestoneStatus.PENDING_REVIEW: frozenset({MilestoneStatus.APPROVED, MilestoneStatus.REJECTED,
                                                   MilestoneStatus.RESOLVED}),
        MilestoneStatus.REJECTED: frozenset({MilestoneStatus.PENDING_REVIEW, MilestoneStatus.APPROVED,
                                             MilestoneStatus.RESOLVED}),
        MilestoneStatus.APPROVED: frozenset({MilestoneStatus.PAID, MilestoneStatus.RESOLVED}),
        MilestoneStatus.PAID: frozenset({MilestoneStatus.APPROVED}),  # a settled payout came back (refunded)
        MilestoneStatus.RESOLVED: frozenset(),
    }
    # Not yet approved: what a proof, the client or the deadline policy may still approve.
    OPEN_STATUSES = frozenset({MilestoneStatus.WAITING, MilestoneStatus.PENDING_REVIEW, MilestoneStatus.REJECTED})

    escrow = models.ForeignKey(EscrowAgreement, on_delete=models.PROTECT, related_name="milestones")
    idx = models.PositiveSmallIntegerField(help_text="1-based, in the order given at creation.")
    label = models.CharField(max_length=200)
    amount = money_field()
    status = models.CharField(max_length=16, choices=MilestoneStatus.choices, default=MilestoneStatus.WAITING)
    proof_type = models.CharField(max_length=16, choices=ProofType.choices)
    proof_requirements = models.JSONField(default=dict, blank=True)
    geofence_lat = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    geofence_lng = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    geofence_radius_m = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["escrow_id", "idx"]
        constraints = [
            models.UniqueConstraint(fields=["escrow", "idx"], name="milestone_unique_idx_per_escrow"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="milestone_amount_positive"),
            models.CheckConstraint(condition=Q(idx__gte=1), name="milestone_idx_from_one"),
            models.CheckConstraint(
                condition=(
                    Q(geofence_lat__isnull=True, geofence_lng__isnull=True, geofence_radius_m__isnull=True)
                    | Q(geofence_lat__gte=-90, geofence_lat__lte=90, geofence_lng__gte=-180, geofence_lng__lte=180,
                        geofence_radius_m__gt=0)
                ),
                name="milestone_geofence_complete_and_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Milestone {self.idx} of escrow #{self.escrow_id} ({self.status})"

    @property
    def has_geofence(self) -> bool:
        return self.geofence_lat is not None


class EscrowDeposit(models.Model):
    """Money in. Unique per (account, idempotency key): a retried deposit can never count twice."""

    class Source(models.TextChoices):
        API = "api"
        PSP = "psp"

    escrow = models.ForeignKey(EscrowAgreement, on_delete=models.PROTECT, related_name="deposits")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = money_field()
    idempotency_key = models.CharField(max_length=255)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    psp_ref = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="deposit_idempotency_key_unique_per_account"),
            # A PSP funding is counted once, whichever escrow or account it names.
            models.UniqueConstraint(fields=["psp_ref"], condition=~Q(psp_ref=""), name="deposit_psp_ref_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Deposit #{self.pk} {self.amount} to escrow #{self.escrow_id}"


# The timeline's ``kind`` in the vocabulary of the events API (``/events``,
# webhooks: kobatela.events.catalogue): a kind with an integrator event has that
# event's type; the others (steps that emit no event of their own) are named in
# the same dotted form. ``kind`` stays as it was (API.md fixes it).
TIMELINE_EVENT_TYPES: dict[str, str] = {
    "created": "escrow.created",
    "funded": "escrow.funded",
    "releasable": "escrow.releasable",
    "released": "escrow.released",
    "refunded": "escrow.refunded",
    "cancelled": "escrow.cancelled",
    "milestone_approved": "milestone.approved",
    "milestone_rejected": "milestone.rejected",
    "milestone_paid": "milestone.paid",
    "payout_refunded": "payment.refunded",
    "deposit": "escrow.deposit_received",
    "funding_session_created": "escrow.funding_session_created",
    "delivered": "escrow.delivered",
    "client_approved": "escrow.client_approved",
    "client_rejected": "escrow.client_rejected",
    "deadline_passed": "escrow.deadline_passed",
}


class EscrowEvent(models.Model):
    """The escrow's timeline, as its owner sees it (``GET /escrows/{id}/events``)."""

    escrow = models.ForeignKey(EscrowAgreement, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    actor = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["escrow", "created_at"], name="escrow_event_timeline_idx")]

    def __str__(self) -> str:
        return f"{self.kind} on escrow #{self.escrow_id}"

    @property
    def type(self) -> str:
        """``kind`` in the events API's vocabulary (``TIMELINE_EVENT_TYPES``; ``escrow.<kind>`` for a new kind)."""
        return TIMELINE_EVENT_TYPES.get(self.kind, f"escrow.{self.kind}")


class DisputeStatus(models.TextChoices):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"
    WITHDRAWN = "WITHDRAWN"


class DisputeParty(models.TextChoices):
    CLIENT = "client"
    PROVIDER = "provider"


class Dispute(models.Model):
    """A party says the deal went wrong. While OPEN, its milestones never
    auto-approve, never pay out and the deadline policy skips them
    (``escrow.disputes``); support resolves it with a release/refund split of
    ``amount_held``. One OPEN dispute per escrow."""

    Status = DisputeStatus
    Party = DisputeParty
    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        DisputeStatus.OPEN: frozenset({DisputeStatus.RESOLVED, DisputeStatus.WITHDRAWN}),
        DisputeStatus.RESOLVED: frozenset(),
        DisputeStatus.WITHDRAWN: frozenset(),
    }

    escrow = models.ForeignKey(EscrowAgreement, on_delete=models.PROTECT, related_name="disputes")
    milestones = models.ManyToManyField(Milestone, related_name="disputes")
    status = models.CharField(max_length=16, choices=DisputeStatus.choices, default=DisputeStatus.OPEN, db_index=True)
    opened_by = models.CharField(max_length=16, choices=DisputeParty.choices)
    opened_by_label = models.CharField(max_length=100)
    reason = models.TextField(max_length=2000)
    amount_held = money_field()
    release_amount = money_field(null=True, blank=True)
    refund_amount = money_field(null=True, blank=True)
    resolution_note = models.TextField(max_length=2000, blank=True, default="")
    resolved_by = models.CharField(max_length=100, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("resolve_dispute", "Can resolve a dispute")]
        constraints = [
            models.UniqueConstraint(fields=["escrow"], condition=Q(status=DisputeStatus.OPEN),
                                    name="dispute_one_open_per_escrow"),
            models.CheckConstraint(condition=Q(amount_held__gt=0), name="dispute_amount_held_positive"),
            models.CheckConstraint(
                condition=Q(release_amount__isnull=True, refund_amount__isnull=True)
                | Q(release_amount__gte=0, refund_amount__gte=0,
                    release_amount=F("amount_held") - F("refund_amount")),
                name="dispute_split_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"Dispute #{self.pk} on escrow #{self.escrow_id} ({self.status})"


class DisputeMessage(models.Model):
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="messages")
    author = models.CharField(max_length=100, help_text="client, provider, or the support/admin actor's label.")
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Message #{self.pk} on dispute #{self.dispute_id}"


class RefundStatus(models.TextChoices):
    PENDING = "PENDING"
    SENT = "SENT"
    SETTLED = "SETTLED"
    FAILED = "FAILED"


class Refund(models.Model):
    """Money back to the client through the PSP (a refund of the funding charge).

    Booked when created (``escrow:<id>`` → ``psp:clearing``, ``amount_refunded``
    grows), so the running cap — never more than funded and not released or
    promised — holds under the escrow lock; a ``refund.failed`` books it back.
    The PSP call carries ``refund-<id>`` as its idempotency key.
    """

    Status = RefundStatus
    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        RefundStatus.PENDING: frozenset({RefundStatus.SENT, RefundStatus.SETTLED, RefundStatus.FAILED}),
        RefundStatus.SENT: frozenset({RefundStatus.SETTLED, RefundStatus.FAILED}),
        RefundStatus.SETTLED: frozenset(),
        RefundStatus.FAILED: frozenset(),
    }
    IN_FLIGHT = frozenset({RefundStatus.PENDING, RefundStatus.SENT})

    escrow = models.ForeignKey(EscrowAgreement, on_delete=models.PROTECT, related_name="refunds")
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="refunds", null=True, blank=True)
    amount = money_field()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.PENDING, db_index=True)
    reason = models.CharField(max_length=2000)
    funding_ref = models.CharField(max_length=255, blank=True, default="",
                                   help_text="The PSP funding charge refunded (a deposit's psp_ref).")
    psp_ref = models.CharField(max_length=255, blank=True, default="", db_index=True)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=100)
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]
        permissions = [("retry_refund", "Can retry a failed refund")]

    def __str__(self) -> str:
        return f"Refund #{self.pk} {self.amount} {self.currency} ({self.status})"
