from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class Event(models.Model):
    """Something that happened to an account's escrow, milestone, proof,
    payment or mandate, written in the same transaction as the change itself
    (``kobatela.events.services.emit``), so an event exists exactly when its
    change committed. ``data`` is the resource as the API's Read serializer
    showed it at that moment; the row is never updated.
    """

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=64, help_text="e.g. escrow.funded; see kobatela.events.catalogue.EVENT_TYPES.")
    object_type = models.CharField(max_length=32, help_text="escrow, payment, proof or mandate.")
    object_id = models.CharField(max_length=64)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder,
                               help_text="What the resource alone does not say, e.g. which milestone.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="event_account_created_idx"),
            models.Index(fields=["type", "-created_at"], name="event_type_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Event #{self.pk} {self.type} ({self.object_type} {self.object_id})"
