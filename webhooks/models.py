from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from kobatela.events.models import Event  # the outbox; WebhookDelivery points at it


class InboundEvent(models.Model):
    """A provider webhook, stored after its signature is verified and before
    it is processed (dj-stripe's WebhookEventTrigger is the model).

    Unique per (provider, event id): a redelivery finds its row. The row keeps
    what is needed to reprocess it from the admin or ``manage.py
    reprocess_webhooks`` after a failure.

    Every signed delivery that has an id is stored, usable or not
    (``webhooks.inbound``): RECEIVED until an attempt ends; PROCESSED once
    acted on; IGNORED when it is not ours (no Kobatela metadata, a type we do
    not act on); FAILED when it looks like ours but cannot be applied, with
    the reason in ``error``. PROCESSED and IGNORED are final: a redelivery is
    a duplicate.
    """

    class Provider(models.TextChoices):
        PSP = "psp"
        STRIPE = "stripe"

    class Status(models.TextChoices):
        RECEIVED = "RECEIVED"
        PROCESSED = "PROCESSED"
        IGNORED = "IGNORED"
        FAILED = "FAILED"

    FINAL_STATUSES = frozenset({Status.PROCESSED, Status.IGNORED})

    provider = models.CharField(max_length=16, choices=Provider.choices)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    headers = models.JSONField(default=dict, help_text="Delivery headers; signatures left out.")
    body = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    result = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True, default="",
                             help_text="Why it was not processed: the failure (FAILED) or why it is not ours (IGNORED).")
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True, help_text="When it was processed or ignored.")

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [("reprocess_inboundevent", "Can reprocess a stored webhook event")]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="inbound_event_unique_per_provider")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.event_type} ({self.status})"


# --------------------------------------------------------------------------- #
# Outbound: integrators' endpoints and the deliveries of events to them
# (the events themselves are kobatela.events' outbox)
# --------------------------------------------------------------------------- #


class WebhookEndpoint(models.Model):
    """An integrator's URL that receives its account's events, signed with its secret.

    Secrets are stored in clear in this column. They must be usable to sign
    (HMAC), so they cannot be hashed like API keys; encrypting them would need
    a key kept outside the database and an AEAD library the runtime does not
    carry (``cryptography`` would be a new dependency) for a narrow gain: a
    leaked secret lets someone forge webhooks *to* the integrator, and a
    rotation ends that. What protects them instead: shown once (creation and
    rotation answers), never in another API answer, the admin, ``__str__``,
    an audit row or a log line (``kobatela.core.masking`` also masks
    ``whsec_…`` wherever it would appear).
    """

    class Status(models.TextChoices):
        ENABLED = "ENABLED"
        DISABLED = "DISABLED"  # by a 410 Gone, by 5 days of failures; the owner may enable it again
        DELETED = "DELETED"  # by its owner; kept for the delivery history, secrets wiped

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=255, blank=True, default="")
    event_types = models.JSONField(default=list, blank=True, help_text="Subscribed types; empty means all.")
    secret = models.CharField(max_length=128)
    previous_secret = models.CharField(max_length=128, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENABLED, db_index=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True,
                                         help_text="First failed attempt since the last success.")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:  # never the secret
        return f"Webhook endpoint #{self.pk} {self.url} ({self.status})"

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, now) -> list[str]:
        """The current secret, and the previous one while its rotation window lasts."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and now < self.previous_secret_expires_at:
            secrets.append(self.previous_secret)
        return secrets


class WebhookDelivery(models.Model):
    """One event to one endpoint. The row is the work queue: PENDING with a
    ``next_attempt_at`` is due work, whoever (task after commit or the beat
    sweeper) gets there first claims it (``webhooks.outbound.delivery``)."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveIntegerField(default=0, help_text="Attempts started (claimed) so far.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # The API calls it last_latency_ms; "lat…" names are kept for coordinates (tests/core/test_money_types).
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Of the last attempt, in ms.")
    last_error = models.CharField(max_length=500, blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweeper's query: due PENDING rows, oldest first.
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx", condition=Q(status="PENDING")),
            models.Index(fields=["endpoint", "-created_at", "-id"], name="delivery_endpoint_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="PENDING") | Q(next_attempt_at__isnull=False), name="delivery_pending_is_scheduled"
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery #{self.pk} of event #{self.event_id} to endpoint #{self.endpoint_id} ({self.status})"
