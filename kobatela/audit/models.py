from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


def _append_only_triggers(prefix: str) -> list:
    """UPDATE and DELETE refused row by row, TRUNCATE refused for the table: the
    last line of defence, for a role that has those privileges at all (the
    application's role has none of them on these tables: README "Operations")."""
    return [
        pgtrigger.Protect(name=f"{prefix}_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        pgtrigger.Trigger(
            name=f"{prefix}_no_truncate",
            operation=pgtrigger.Truncate,
            when=pgtrigger.Before,
            level=pgtrigger.Statement,
            func="RAISE EXCEPTION 'audit log is append-only: TRUNCATE refused'; RETURN NULL;",
        ),
    ]


class AuditLog(models.Model):
    """An append-only record of every change of state (and of audited reads).

    Request paths only INSERT rows; the primary key comes from a sequence and
    is the row's place in the chain (``seq``). The sealing job
    (``kobatela.audit.sealing``) later chains the rows in that order: each
    row's hash covers its content and the previous row's hash, and is kept in
    :class:`AuditSeal` — this table is never updated. The database refuses
    UPDATE, DELETE and TRUNCATE (triggers below, and the application's role
    has no such privilege). ``manage.py verify_audit_chain`` checks the chain
    against the signed checkpoints kept outside the database. Rows are only
    written by ``kobatela.audit.services.record``.
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=100, db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    entity_type = models.CharField(max_length=100)
    entity_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    request_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["entity_type", "entity_id"], name="audit_entity_idx")]
        triggers = _append_only_triggers("auditlog")

    @property
    def seq(self) -> int:
        return self.pk

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.entity_type}:{self.entity_id}"


class AuditSeal(models.Model):
    """The chain: one row per sealed audit row, written (INSERT only) by the sealing job.

    ``row_hash`` = SHA-256 of the previous seal's hash and the audit row's
    content (``kobatela.audit.chain.compute_row_hash``). ``seq`` is the
    audit row's id; gaps are sequence values of rolled-back transactions.
    """

    seq = models.BigIntegerField(primary_key=True)
    row_hash = models.CharField(max_length=64, unique=True)
    sealed_at = models.DateTimeField()

    class Meta:
        ordering = ["seq"]
        triggers = _append_only_triggers("auditseal")

    def __str__(self) -> str:
        return f"seal #{self.seq}"


class AuditCheckpoint(models.Model):
    """Where the sealed chain ended, signed (Ed25519): a copy of each one is
    written outside the database (``AUDIT_CHECKPOINT_STORAGE``) and logged.

    ``payload`` is the exact signed JSON text; the other columns repeat it for queries.
    """

    last_seq = models.BigIntegerField(db_index=True)
    head_hash = models.CharField(max_length=64)
    row_count = models.BigIntegerField()
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=32)
    payload = models.TextField()
    signature = models.CharField(max_length=128)
    external_name = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        triggers = _append_only_triggers("auditcheckpoint")

    def __str__(self) -> str:
        return f"checkpoint up to #{self.last_seq}"


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
