"""The one way to write audit rows and alerts.

``record`` masks the data (IBANs, emails, phones, secrets) before it is
stored, and serializes chain writes: on PostgreSQL a transaction-level
advisory lock is held from reading the chain's head until the transaction
commits, so rows are chained in commit order and no two rows share a parent.
(SQLite, the embedded default, takes its write lock at BEGIN: see settings.)
Call it last in a service's transaction, to hold that lock briefly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from kobatela.audit.models import Alert, AuditLog
from kobatela.core import db
from kobatela.core.actor import Actor
from kobatela.core.masking import mask_data
from kobatela.core.request_context import get_request_id
from kobatela.core.state import transition

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the audit chain's advisory lock.
AUDIT_CHAIN_LOCK_ID = 0x6B6F6261_0001


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)


def compute_row_hash(*, prev_hash: str, created_at, actor: str, action: str, entity_type: str,
                     entity_id: str, data: Any, request_id: str) -> str:
    payload = _canonical([prev_hash, created_at.isoformat(), actor, action, entity_type, entity_id, data, request_id])
    return hashlib.sha256(payload.encode()).hexdigest()


def _entity_ref(entity: models.Model | tuple[str, Any]) -> tuple[str, str]:
    if isinstance(entity, models.Model):
        return entity._meta.label_lower, str(entity.pk)
    entity_type, entity_id = entity
    return entity_type, str(entity_id)


def _lock_chain_and_read_head() -> str:
    """Take the chain's lock until the transaction ends (PostgreSQL), then read
    the head: one cursor, two statements, in that order. The read must come
    after the lock, in its own statement, to see the last holder's row."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_ID])
        table = connection.ops.quote_name(AuditLog._meta.db_table)
        cursor.execute(f"SELECT row_hash FROM {table} ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
    return row[0] if row else GENESIS_HASH


def record(actor: Actor | str, action: str, entity: models.Model | tuple[str, Any], data: dict | None = None) -> AuditLog:
    entity_type, entity_id = _entity_ref(entity)
    # Masked, then normalised to plain JSON so what is hashed is what is stored.
    clean = json.loads(_canonical(mask_data(data or {})))
    # Inside the caller's transaction when there is one (no savepoint needed:
    # a failure here fails the whole movement); its own transaction otherwise.
    with transaction.atomic(savepoint=False):
        prev_hash = _lock_chain_and_read_head()
        fields = dict(
            created_at=timezone.now(),
            actor=Actor.label_of(actor),
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            data=clean,
            request_id=get_request_id() or "",
        )
        [row] = db.insert([AuditLog(prev_hash=prev_hash, row_hash=compute_row_hash(prev_hash=prev_hash, **fields), **fields)])
        return row


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_id: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def _rows() -> Iterable[AuditLog]:
    return AuditLog.objects.order_by("id").iterator(chunk_size=2000)


def audit_chain_verify() -> ChainReport:
    """Walk the chain in id order; report the first row whose links or hash disagree."""
    expected_prev = GENESIS_HASH
    checked = 0
    for row in _rows():
        checked += 1
        if row.prev_hash != expected_prev:
            return ChainReport(checked, row.pk, "prev_hash does not match the previous row's hash")
        recomputed = compute_row_hash(
            prev_hash=row.prev_hash, created_at=row.created_at, actor=row.actor, action=row.action,
            entity_type=row.entity_type, entity_id=row.entity_id, data=row.data, request_id=row.request_id,
        )
        if recomputed != row.row_hash:
            return ChainReport(checked, row.pk, "row content does not match its row_hash")
        expected_prev = row.row_hash
    return ChainReport(checked, None, None)


def alert_raise(*, type: str, message: str, data: dict | None = None,
                severity: str = Alert.Severity.WARNING, actor: Actor | str = "system") -> Alert:
    with transaction.atomic():
        alert = Alert.objects.create(type=type, message=message[:500], data=mask_data(data or {}), severity=severity)
        record(actor, "alert.raised", alert, {"type": type, "severity": severity, "message": message})
    return alert


def alert_transition(*, alert_id: int, to: str, staff_user) -> Alert:
    """Acknowledge or resolve an alert (admin actions); audited with the staff user."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        transition(alert, to)
        now = timezone.now()
        if to == Alert.Status.ACKNOWLEDGED:
            alert.acknowledged_by, alert.acknowledged_at = staff_user, now
        else:
            alert.resolved_by, alert.resolved_at = staff_user, now
        alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at"])
        record(Actor.staff(staff_user), f"alert.{to.lower()}", alert, {"type": alert.type})
    return alert
