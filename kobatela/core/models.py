from django.db import models
from rest_framework.utils.encoders import JSONEncoder


class IdempotencyKey(models.Model):
    """One client request made with an ``Idempotency-Key`` (Stripe semantics).

    Scoped per API key. While the first request runs the row is
    ``IN_PROGRESS``; then it holds the response to replay. Rows live at least
    ``IDEMPOTENCY_KEY_TTL_HOURS`` and are purged by a beat job.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "IN_PROGRESS"
        COMPLETED = "COMPLETED"

    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=JSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_unique_per_api_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class SchedulerHeartbeat(models.Model):
    """Last time a periodic job ran; ``/health`` shows the age of ``beat``."""

    name = models.CharField(max_length=100, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at.isoformat()}"


class ClockOffset(models.Model):
    """The sandbox test clock's offset from real time (``kobatela.core.clock``): one row, sandbox only."""

    SINGLETON = 1

    seconds = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"test clock +{self.seconds}s"
