from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AuditLog(models.Model):
    """An append-only, hash-chained record of every change of state.

    The database refuses UPDATE, DELETE and TRUNCATE (triggers below). Each
    row's ``row_hash`` covers its content and the previous row's hash, so an
    edit made around the triggers (by a superuser who disables them) breaks
    the chain, which ``manage.py verify_audit_chain`` reports. Rows are only
    written by ``kobatela.audit.services.record``.
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=100, db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    entity_type = models.CharField(max_length=100)
    entity_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    request_id = models.CharField(max_length=128, blank=True, default="")
    prev_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["entity_type", "entity_id"], name="audit_entity_idx")]
        triggers = [
            pgtrigger.Protect(name="auditlog_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
            pgtrigger.Trigger(
                name="auditlog_no_truncate",
                operation=pgtrigger.Truncate,
                when=pgtrigger.Before,
                level=pgtrigger.Statement,
                func="RAISE EXCEPTION 'audit log is append-only: TRUNCATE refused'; RETURN NULL;",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.entity_type}:{self.entity_id}"


class Alert(models.Model):
    """Something an operator must look at (a payout given up, a refused transfer…)."""

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    class Status(models.TextChoices):
        OPEN = "OPEN"
        ACKNOWLEDGED = "ACKNOWLEDGED"
        RESOLVED = "RESOLVED"

    ALLOWED_TRANSITIONS = {
        Status.OPEN: {Status.ACKNOWLEDGED, Status.RESOLVED},
        Status.ACKNOWLEDGED: {Status.RESOLVED},
        Status.RESOLVED: set(),
    }

    type = models.CharField(max_length=64, db_index=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("acknowledge_alert", "Can acknowledge and resolve alerts")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.type}: {self.message}"
