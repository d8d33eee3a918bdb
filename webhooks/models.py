from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class InboundEvent(models.Model):
    """A provider webhook, stored after its signature is verified and before
    it is processed (dj-stripe's WebhookEventTrigger is the model).

    Unique per (provider, event id): a redelivery finds its row. The row keeps
    what is needed to reprocess it from the admin or ``manage.py
    reprocess_webhooks`` after a failure.
    """

    class Provider(models.TextChoices):
        PSP = "psp"
        STRIPE = "stripe"

    class Status(models.TextChoices):
        RECEIVED = "RECEIVED"
        PROCESSED = "PROCESSED"
        FAILED = "FAILED"

    provider = models.CharField(max_length=16, choices=Provider.choices)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    headers = models.JSONField(default=dict, help_text="Delivery headers; signatures left out.")
    body = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    result = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="inbound_event_unique_per_provider")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id} {self.event_type} ({self.status})"
