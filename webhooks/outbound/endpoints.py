"""Integrators' webhook endpoints: register, rotate the secret, delete, enable, disable.

Secrets are shown once (creation and rotation answers); see
``webhooks.models.WebhookEndpoint`` for why they are stored usable.
"""

from __future__ import annotations

import base64
import secrets as secrets_module
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from kobatela.accounts.models import User
from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict, NotFound
from kobatela.core.rows import lock_owned_row
from kobatela.core.transactions import service_transaction
from webhooks import signing, targets
from webhooks.models import WebhookDelivery, WebhookEndpoint

ROTATION_WINDOW = timedelta(hours=24)  # the previous secret keeps signing this long
SECRET_BYTES = 24


def new_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes (Standard Webhooks)."""
    return "whsec_" + base64.b64encode(secrets_module.token_bytes(SECRET_BYTES)).decode("ascii")


def _lock_endpoint(endpoint_id: int, actor: Actor | None) -> WebhookEndpoint:
    return lock_owned_row(WebhookEndpoint.objects.exclude(status=WebhookEndpoint.Status.DELETED), endpoint_id,
                          actor=actor, owner_field="account_id",
                          missing=NotFound("webhook_endpoint_not_found", "No such webhook endpoint."))


def _fail_pending(endpoint: WebhookEndpoint, error: str) -> int:
    now = timezone.now()
    return WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED, next_attempt_at=None, last_error=error, finished_at=now, updated_at=now,
    )


def endpoint_create(*, actor: Actor, url: str, event_types: list[str], description: str = "") -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for the actor's account; returns it with its secret (shown this once)."""
    try:
        targets.check_for_registration(url)
    except targets.TargetError as exc:
        raise exc.as_validation_error() from None
    secret = new_secret()
    with service_transaction():
        # The account row serializes concurrent creations, so the limit holds.
        User.objects.select_for_update().filter(pk=actor.user_id).first()
        live = WebhookEndpoint.objects.filter(account_id=actor.user_id).exclude(status=WebhookEndpoint.Status.DELETED)
        if live.count() >= settings.WEBHOOK_MAX_ENDPOINTS_PER_ACCOUNT:
            raise Conflict("webhook_endpoint_limit", "This account has the maximum number of webhook endpoints.",
                           details={"max": settings.WEBHOOK_MAX_ENDPOINTS_PER_ACCOUNT})
        endpoint = WebhookEndpoint.objects.create(account_id=actor.user_id, url=url, event_types=list(event_types),
                                                  description=description, secret=secret)
        audit.record(actor, "webhook_endpoint.created", endpoint,
                     {"url": url, "event_types": list(event_types), "fingerprint": signing.fingerprint(secret)})
    return endpoint, secret


def endpoint_rotate_secret(*, actor: Actor, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new secret, returned this once. The one it replaces keeps signing for
    24 h (deliveries carry both signatures meanwhile); a secret older than that
    is dropped at once."""
    secret = new_secret()
    with service_transaction():
        endpoint = _lock_endpoint(endpoint_id, actor)
        now = timezone.now()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + ROTATION_WINDOW
        endpoint.secret = secret
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        audit.record(actor, "webhook_endpoint.secret_rotated", endpoint,
                     {"fingerprint": signing.fingerprint(secret),
                      "previous_valid_until": endpoint.previous_secret_expires_at})
    return endpoint, secret


def endpoint_delete(*, actor: Actor, endpoint_id: int) -> None:
    """The endpoint stops receiving at once; its row stays (delivery history) with its secrets wiped."""
    with service_transaction():
        endpoint = _lock_endpoint(endpoint_id, actor)
        endpoint.status = WebhookEndpoint.Status.DELETED
        endpoint.secret = endpoint.previous_secret = ""
        endpoint.previous_secret_expires_at = None
        endpoint.save(update_fields=["status", "secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
        _fail_pending(endpoint, "endpoint_deleted")
        audit.record(actor, "webhook_endpoint.deleted", endpoint, {"url": endpoint.url})


def endpoint_enable(*, actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    """Turn a disabled endpoint back on (its failure streak starts afresh)."""
    with service_transaction():
        endpoint = _lock_endpoint(endpoint_id, actor)
        if endpoint.status != WebhookEndpoint.Status.ENABLED:
            endpoint.status = WebhookEndpoint.Status.ENABLED
            endpoint.disabled_reason = ""
            endpoint.disabled_at = endpoint.failing_since = None
            endpoint.save(update_fields=["status", "disabled_reason", "disabled_at", "failing_since", "updated_at"])
            audit.record(actor, "webhook_endpoint.enabled", endpoint, {})
    return endpoint


def endpoint_disable(endpoint: WebhookEndpoint, *, reason: str, now: datetime) -> None:
    """Inside the caller's transaction, the endpoint row locked."""
    endpoint.status = WebhookEndpoint.Status.DISABLED
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    endpoint.save(update_fields=["status", "disabled_reason", "disabled_at", "failing_since", "last_failure_at",
                                 "updated_at"])
    _fail_pending(endpoint, "endpoint_disabled")
    audit.record(Actor.system("webhook_delivery"), "webhook_endpoint.disabled", endpoint,
                 {"reason": reason, "account_id": endpoint.account_id})
