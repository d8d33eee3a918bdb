from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from kobatela.core.actor import Actor
from kobatela.core.scopes import SEE_ALL_SCOPES, Scope


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra):
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)  # None → unusable password: API-only accounts
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class PayoutStatus(models.TextChoices):
    """Whether payouts may go to this account (payee verification, as every PSP requires)."""

    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    PAUSED = "paused"


def default_payout_status() -> str:
    """What a new account starts as: ``PAYOUT_STATUS_DEFAULT`` (``unverified`` unless configured)."""
    from django.conf import settings

    return settings.PAYOUT_STATUS_DEFAULT


class User(AbstractBaseUser, PermissionsMixin):
    """An account: the tenant that owns escrows, proofs, mandates… (and, when
    ``is_staff``, a support reviewer who can log into the admin)."""

    class Kind(models.TextChoices):
        PERSON = "person"
        COMPANY = "company"
        NGO = "ngo"
        GOV = "gov"

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSON)
    payout_account = models.CharField(
        max_length=255, blank=True, default="", help_text="Where the PSP pays this account (e.g. a Stripe acct_…)."
    )
    payout_status = models.CharField(
        max_length=16, choices=PayoutStatus.choices, default=default_payout_status,
        help_text="Payouts to this account leave only when verified (support, or the PSP's account.verified).",
    )
    # Failed or returned payouts since the last settled one; at PAYEE_PAUSE_AFTER_FAILURES the payee is paused.
    payout_failures_in_row = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.email

    @property
    def payout_destination(self) -> str:
        return self.payout_account or f"user:{self.pk}"


class ApiKey(models.Model):
    """A scoped API key. The plaintext is shown once; only its SHA-256 is kept.

    Format ``kbt_<prefix>_<secret>``: the prefix is public (it finds the row
    and shows in listings and logs), the secret is 32 random url-safe bytes.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def effective_scopes(self) -> frozenset[str]:
        """The key's scopes; ``admin`` may do everything ``support`` may."""
        scopes = set(self.scopes or ())
        if Scope.ADMIN in scopes:
            scopes.add(Scope.SUPPORT)
        return frozenset(scopes)

    def as_actor(self) -> Actor:
        """Who acts when this key calls the API."""
        scopes = self.effective_scopes
        return Actor(label=f"apikey:{self.pk}", user=self.user, api_key=self, scopes=scopes,
                     reads_all_accounts=bool(scopes & SEE_ALL_SCOPES))
