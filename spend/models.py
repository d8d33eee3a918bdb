"""Usage mandates (budgets spendable at allowed merchants until an expiry), the
merchant catalogue and its allow rules, purchases, and the payees an escrow may
pay directly (``POST /spend``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from kobatela.core.money import money_field


class MandateStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    CONSUMED = "CONSUMED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class Sector(models.TextChoices):
    """What a mandate's budget is for. Published only in aggregate
    (``GET /kct_public/mandates``), so public bodies can follow how much goes
    to each sector without seeing who gives or receives it. ``other`` is the
    default when a sender does not say."""

    HEALTH = "health"
    EDUCATION = "education"
    FOOD = "food"
    OTHER = "other"


class SpendCategory(models.Model):
    code = models.SlugField(max_length=50, unique=True)
    label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "spend categories"

    def __str__(self) -> str:
        return f"{self.code} ({self.label})"


class Merchant(models.Model):
    """A shop or provider a beneficiary may buy from. A certified merchant is
    accepted by every mandate (see ``spend.services.purchase_create``)."""

    name = models.CharField(max_length=200)
    category = models.ForeignKey(SpendCategory, on_delete=models.PROTECT, related_name="merchants")
    is_certified = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class UsageMandate(models.Model):
    """A budget a sender gives a beneficiary, spendable only at allowed
    merchants/categories between ``starts_at`` and ``expires_at``.

    Creating it moves ``total_amount`` from ``psp:clearing`` to the ledger
    account ``mandate:<id>``; purchases move money from there to
    ``merchant:<id>``; expiry or revocation returns what is left. While ACTIVE
    or CONSUMED the account holds exactly ``remaining_amount``; afterwards it
    holds nothing, and ``remaining_amount`` keeps what was given back. In every
    state the purchases add up to ``total_amount − remaining_amount``
    (``manage.py reconcile`` checks all of it).
    """

    Status = MandateStatus
    STATE_NOUN = "mandate"  # its name in the API and in error codes (mandate_is_revoked)
    ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
        MandateStatus.ACTIVE: frozenset({MandateStatus.CONSUMED, MandateStatus.EXPIRED, MandateStatus.REVOKED}),
        MandateStatus.CONSUMED: frozenset(),
        MandateStatus.EXPIRED: frozenset(),
        MandateStatus.REVOKED: frozenset(),
    }

    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mandates_given",
                               help_text="The account that owns the mandate (the tenant).")
    beneficiary = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mandates_received")
    total_amount = money_field()
    remaining_amount = money_field()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=MandateStatus.choices, default=MandateStatus.ACTIVE, db_index=True)
    sector = models.CharField(max_length=16, choices=Sector.choices, default=Sector.OTHER, db_index=True)
    starts_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    allowed_categories = models.ManyToManyField(SpendCategory, blank=True, related_name="mandates")
    allowed_merchants = models.ManyToManyField(Merchant, blank=True, related_name="mandates")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When it left ACTIVE.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(total_amount__gt=0), name="mandate_total_amount_positive"),
            models.CheckConstraint(condition=Q(remaining_amount__gte=0), name="mandate_remaining_not_negative"),
            models.CheckConstraint(condition=Q(remaining_amount__lte=F("total_amount")),
                                   name="mandate_remaining_within_total"),
            models.CheckConstraint(condition=Q(starts_at__lt=F("expires_at")), name="mandate_starts_before_expiry"),
            models.CheckConstraint(
                condition=~Q(status=MandateStatus.CONSUMED) | Q(remaining_amount=0), name="mandate_consumed_is_empty"
            ),
            models.UniqueConstraint(
                fields=["sender", "beneficiary", "currency"],
                condition=Q(status=MandateStatus.ACTIVE),
                name="mandate_one_active_per_sender_beneficiary_currency",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="mandate_expiry_idx")]

    def __str__(self) -> str:
        return f"Mandate #{self.pk} {self.remaining_amount}/{self.total_amount} {self.currency} ({self.status})"


class AllowedUsage(models.Model):
    """A standing rule of an account: every mandate it gives may be spent at
    this merchant, or in this category. Exactly one of the two is set."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="allowed_usages")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    category = models.ForeignKey(SpendCategory, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(merchant__isnull=False, category__isnull=True)
                | Q(merchant__isnull=True, category__isnull=False),
                name="allowed_usage_exactly_one_target",
            ),
            models.UniqueConstraint(fields=["owner", "merchant"], condition=Q(merchant__isnull=False),
                                    name="allowed_usage_unique_merchant"),
            models.UniqueConstraint(fields=["owner", "category"], condition=Q(category__isnull=False),
                                    name="allowed_usage_unique_category"),
        ]

    def __str__(self) -> str:
        target = f"merchant #{self.merchant_id}" if self.merchant_id else f"category #{self.category_id}"
        return f"{self.owner_id} may spend at {target}"


class AllowedPayee(models.Model):
    """Someone an escrow may pay directly (``POST /spend``), within limits.

    ``spent_today`` counts the UTC day ``spent_on``; the first spend of a new
    day starts it again from zero. Limits count what was sent to the PSP,
    whatever becomes of the payout afterwards.
    """

    escrow = models.ForeignKey("escrow.EscrowAgreement", on_delete=models.PROTECT, related_name="allowed_payees")
    payee_ref = models.CharField(max_length=255, help_text="The payee's reference at the PSP.")
    label = models.CharField(max_length=200)
    daily_limit = money_field(null=True, blank=True)
    total_limit = money_field(null=True, blank=True)
    spent_today = money_field(default=0)
    spent_total = money_field(default=0)
    spent_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["escrow", "payee_ref"], name="allowed_payee_unique_per_escrow"),
            models.CheckConstraint(condition=Q(daily_limit__isnull=True) | Q(daily_limit__gt=0),
                                   name="allowed_payee_daily_limit_positive"),
            models.CheckConstraint(condition=Q(total_limit__isnull=True) | Q(total_limit__gt=0),
                                   name="allowed_payee_total_limit_positive"),
            models.CheckConstraint(condition=Q(spent_today__gte=0) & Q(spent_total__gte=0),
                                   name="allowed_payee_spent_not_negative"),
            models.CheckConstraint(condition=Q(daily_limit__isnull=True) | Q(spent_today__lte=F("daily_limit")),
                                   name="allowed_payee_within_daily_limit"),
            models.CheckConstraint(condition=Q(total_limit__isnull=True) | Q(spent_total__lte=F("total_limit")),
                                   name="allowed_payee_within_total_limit"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.payee_ref}) for escrow #{self.escrow_id}"


class Purchase(models.Model):
    """Money spent from a mandate at a merchant.

    ``sender`` is the mandate's sender (the tenant): the idempotency key is
    unique per sender, so a retried purchase can never count twice.
    ``created_at`` is the instant the purchase was checked against the
    mandate's validity, under the mandate's lock.
    """

    mandate = models.ForeignKey(UsageMandate, on_delete=models.PROTECT, related_name="purchases")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="purchases")
    category = models.ForeignKey(SpendCategory, on_delete=models.PROTECT, related_name="purchases")
    amount = money_field()
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="purchase_amount_positive"),
            models.UniqueConstraint(fields=["sender", "idempotency_key"], name="purchase_idempotency_key_unique_per_sender"),
        ]

    def __str__(self) -> str:
        return f"Purchase #{self.pk} {self.amount} {self.currency} at merchant #{self.merchant_id}"


class PayeeSpend(models.Model):
    """One ``POST /spend``: the payout it created and the note that came with it.
    The idempotency key is unique per escrow client, so a retried spend can
    never pay twice."""

    payee = models.ForeignKey(AllowedPayee, on_delete=models.PROTECT, related_name="spends")
    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="payee_spend")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = money_field()
    note = models.CharField(max_length=2000, blank=True, default="")
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payee_spend_amount_positive"),
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="payee_spend_idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"Spend #{self.pk} {self.amount} to payee #{self.payee_id}"
