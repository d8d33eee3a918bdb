"""The one way to write audit rows and alerts.

``record`` masks the data (IBANs, emails, phones, secrets) before it is
stored and INSERTs one row: no lock, no read of the chain, so an audited
read costs one insert and audited actions of all tenants never wait on each
other. The row's id (a sequence) is its place in the chain; the sealing job
(``kobatela.audit.chain.audit_seal``, every few seconds) chains the rows in
that order afterwards and checkpoints the chain outside the database.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from kobatela.audit.chain import audit_chain_verify, audit_seal, canonical_json  # noqa: F401 (the API)
from kobatela.audit.models import Alert, AuditLog
from kobatela.core import db
from kobatela.core.actor import Actor
from kobatela.core.masking import mask_data
from kobatela.core.request_context import get_request_id
from kobatela.core.state import transition


def _entity_ref(entity: models.Model | tuple[str, Any]) -> tuple[str, str]:
    if isinstance(entity, models.Model):
        return entity._meta.label_lower, str(entity.pk)
    entity_type, entity_id = entity
    return entity_type, str(entity_id)


def record(actor: Actor | str, action: str, entity: models.Model | tuple[str, Any], data: dict | None = None) -> AuditLog:
    """Write one audit row, in the caller's transaction when there is one (a failure
    there fails the whole movement, and a rolled-back movement leaves no row)."""
    entity_type, entity_id = _entity_ref(entity)
    # Masked, then normalised to plain JSON so what is sealed is what is stored.
    clean = json.loads(canonical_json(mask_data(data or {})))
    [row] = db.insert([AuditLog(
        created_at=timezone.now(),
        actor=Actor.label_of(actor),
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        data=clean,
        request_id=get_request_id() or "",
    )])
    return row


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
