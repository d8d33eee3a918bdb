from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q

from kobatela.core.money import money_field


class PaymentStatus(models.TextChoices):
    SCHEDULED = "SCHEDULED"  # approved; leaves at scheduled_for (the escrow's inspection window)
    PENDING = "PENDING"
    SENT = "SENT"
    SETTLED = "SETTLED"
    ERROR = "ERROR"  # our send attempts failed (the PSP was down or refused the request); the sweeper retries
    FAILED = "FAILED"  # the PSP reported the sent payout failed (failure_code); retried by an explicit execute
    RETURNED = "RETURNED"  # the bank sent a settled payout back (failure_code); retried by an explicit execute
    REFUNDED = "REFUNDED"  # a settled payout came back for good (payout.refunded); the milestone may get a new one
    CANCELLED = "CANCELLED"  # never sent: a dispute resolution decided where its money goes


class Payment(models.Model):
    """A payout from an escrow through the PSP.

    ``PENDING`` is work still to do (the execute task, or the sweeper when a
    message was lost); ``ERROR`` is retryable up to ``PAYOUT_MAX_ATTEMPTS``.
    The PSP call carries ``payout-<id>`` as its idempotency key, so however
    often a payout is sent, the provider pays it once.

    ``SCHEDULED`` waits for ``scheduled_for`` (an inspection window); ``FAILED``
    and ``RETURNED`` are the PSP's verdicts (``failure_code``), retried only by
    ``POST /payments/{id}/execute`` as a new PSP request (next generation).
    Until then their money stays promised to this payout (see
    ``payments.selectors.COMMITTED_PAYMENT_STATUSES``).
    """

    Status = PaymentStatus
    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        PaymentStatus.SCHEDULED: frozenset({PaymentStatus.PENDING, PaymentStatus.CANCELLED}),
        PaymentStatus.PENDING: frozenset({PaymentStatus.SENT, PaymentStatus.ERROR, PaymentStatus.SETTLED,
                                          PaymentStatus.FAILED}),
        PaymentStatus.ERROR: frozenset({PaymentStatus.SENT, PaymentStatus.ERROR, PaymentStatus.SETTLED,
                                        PaymentStatus.FAILED}),
        PaymentStatus.SENT: frozenset({PaymentStatus.SETTLED, PaymentStatus.ERROR, PaymentStatus.FAILED}),
        PaymentStatus.FAILED: frozenset({PaymentStatus.PENDING, PaymentStatus.CANCELLED}),
        PaymentStatus.SETTLED: frozenset({PaymentStatus.REFUNDED, PaymentStatus.RETURNED}),
        PaymentStatus.RETURNED: frozenset({PaymentStatus.PENDING, PaymentStatus.CANCELLED}),
        PaymentStatus.REFUNDED: frozenset(),
        PaymentStatus.CANCELLED: frozenset(),
    }
    EXECUTABLE = frozenset({PaymentStatus.PENDING, PaymentStatus.ERROR})
    # The PSP's verdicts: an explicit execute sends them again, as a new PSP request.
    RETRYABLE_VERDICTS = frozenset({PaymentStatus.FAILED, PaymentStatus.RETURNED})
    SENT_OR_AFTER = frozenset({PaymentStatus.SENT, PaymentStatus.SETTLED})  # the PSP has (or paid) the payout

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    escrow = models.ForeignKey("escrow.EscrowAgreement", on_delete=models.PROTECT, related_name="payments", null=True, blank=True)
    milestone = models.ForeignKey("escrow.Milestone", on_delete=models.PROTECT, related_name="payments", null=True, blank=True)
    amount = money_field()
    currency = models.CharField(max_length=3)
    destination = models.CharField(max_length=255, help_text="The payee's reference at the PSP.")
    # The account paid (an escrow's provider). A payout to a payee whose payout_status is not
    # "verified" waits PENDING with blocked_reason set, and leaves once the payee is verified.
    payee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts_received",
                              null=True, blank=True)
    blocked_reason = models.CharField(max_length=32, blank=True, default="",
                                      help_text="Why a PENDING payout waits (payee_not_verified, payee_paused).")
    status = models.CharField(max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True)
    psp_ref = models.CharField(max_length=255, blank=True, default="", db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    payout_generation = models.PositiveSmallIntegerField(
        default=1, help_text="Bumped when the PSP reports the payout failed: the next send is a new PSP request."
    )
    last_error = models.CharField(max_length=500, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="",
                                    help_text="The PSP's code for a failed or returned payout.")
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="A SCHEDULED payout leaves at this time.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            # One live payout per milestone; a refunded or cancelled one may be replaced.
            models.UniqueConstraint(
                fields=["milestone"],
                condition=Q(milestone__isnull=False) & ~Q(status__in=[PaymentStatus.REFUNDED, PaymentStatus.CANCELLED]),
                name="payment_one_live_per_milestone_v2",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="payment_sweep_idx"),
                   models.Index(fields=["status", "scheduled_for"], name="payment_scheduled_idx")]
        permissions = [("retry_payment", "Can retry a payout")]

    def __str__(self) -> str:
        return f"Payment #{self.pk} {self.amount} {self.currency} ({self.status})"


class LedgerEntry(models.Model):
    """One line of a double-entry movement. Append-only, like the audit log.

    Every movement (deposit, payout, refund, purchase…) posts lines whose
    amounts sum to zero per currency, in the transaction that moves the money.
    Accounts are strings: ``psp:clearing`` (money outside, at the PSP),
    ``escrow:<id>`` (held for an escrow), ``mandate:<id>`` (a budget) …
    """

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        PAYOUT = "payout"
        PAYOUT_REFUND = "payout_refund"  # a settled payout came back (refunded or returned)
        ESCROW_REFUND = "escrow_refund"  # money to the client (a refund; reversed when the PSP fails it)
        PURCHASE = "purchase"
        MANDATE_FUNDING = "mandate_funding"
        MANDATE_RELEASE = "mandate_release"
        TRANSFER = "transfer"

    movement = models.CharField(max_length=100, db_index=True, help_text="Groups the lines of one movement, e.g. deposit:12.")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    account = models.CharField(max_length=100, db_index=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2, help_text="Signed: + into the account, − out.")
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_amount_not_zero")]
        triggers = [
            pgtrigger.Protect(name="ledger_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.movement} {self.account} {self.amount} {self.currency}"


class TransactionStatus(models.TextChoices):
    COMPLETED = "COMPLETED"


class Transaction(models.Model):
    """A transfer between two accounts, booked at once in the ledger
    (``user:<sender>`` → ``user:<receiver>``, kind ``transfer``).

    Only to a receiver on the sender's allowlist; a refusal writes no
    transaction, only an Alert. The idempotency key is unique per sender, so a
    retried transfer can never be booked twice.
    """

    Status = TransactionStatus

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transactions_sent")
    receiver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="transactions_received")
    amount = money_field()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=TransactionStatus.choices, default=TransactionStatus.COMPLETED)
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transaction_amount_positive"),
            models.CheckConstraint(condition=~Q(sender=models.F("receiver")), name="transaction_not_to_self"),
            models.UniqueConstraint(fields=["sender", "idempotency_key"], name="transaction_idempotency_key_unique_per_sender"),
        ]

    def __str__(self) -> str:
        return f"Transaction #{self.pk} {self.amount} {self.currency} ({self.status})"


class AllowlistEntry(models.Model):
    """``owner`` may send transactions to ``recipient``."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="allowlist")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "allowlist entries"
        constraints = [
            models.UniqueConstraint(fields=["owner", "recipient"], name="allowlist_unique_pair"),
            models.CheckConstraint(condition=~Q(owner=models.F("recipient")), name="allowlist_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id} → {self.recipient_id}"


class CertificationLevel(models.TextChoices):
    BASIC = "basic"
    VERIFIED = "verified"
    PREMIUM = "premium"


class Certification(models.Model):
    """An account's KYC/compliance level, set by an admin (one per account)."""

    Level = CertificationLevel

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="certification")
    level = models.CharField(max_length=16, choices=CertificationLevel.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.level}"
