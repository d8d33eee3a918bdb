from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from kobatela.accounts import keys
from kobatela.accounts.authentication import forget_cached_key
from kobatela.accounts.models import ApiKey, PayoutStatus, User
from kobatela.audit import services as audit
from kobatela.core.actor import Actor
from kobatela.core.errors import Conflict


def user_create(*, actor: Actor | str, email: str, full_name: str, kind: str) -> User:
    email = email.strip().lower()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, full_name=full_name, kind=kind)
            audit.record(actor, "user.created", user, {"email": email, "kind": kind})
    except IntegrityError as exc:
        raise Conflict("email_taken", "An account with this email already exists.") from exc
    return user


def api_key_create(
    *, actor: Actor | str, user: User, name: str, scopes: list[str], expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never stored."""
    new = keys.generate()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user, name=name, prefix=new.prefix, key_hash=new.key_hash,
            scopes=sorted(set(scopes)), expires_at=expires_at,
        )
        audit.record(actor, "apikey.created", api_key,
                     {"user_id": user.pk, "prefix": new.prefix, "scopes": api_key.scopes})
    return api_key, new.plaintext


def api_key_revoke(*, actor: Actor | str, api_key_id: int) -> ApiKey:
    """Revoke a key (idempotent).

    The cached key is dropped at once and again after commit: a request that
    re-cached the old row in between cannot outlive the revocation.
    """
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=api_key_id)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            audit.record(actor, "apikey.revoked", api_key, {"prefix": api_key.prefix})
        forget_cached_key(api_key.prefix)
        transaction.on_commit(lambda: forget_cached_key(api_key.prefix))
    return api_key


# --- payee verification ------------------------------------------------------------

# Told, inside the transaction, when an account's payout_status changes: (user, previous
# status, actor). Filled from AppConfig.ready() by the layers above (payments releases the
# payouts that waited and emits payee.verified / payee.paused).
_PAYOUT_STATUS_LISTENERS: list = []


def add_payout_status_listener(listener) -> None:
    if listener not in _PAYOUT_STATUS_LISTENERS:
        _PAYOUT_STATUS_LISTENERS.append(listener)


def user_set_payout_status(*, actor: Actor | str, user_id: int, payout_status: str, reason: str = "") -> User:
    """Set whether payouts may go to this account (support, admin, or the PSP's
    ``account.verified``). Idempotent: the same status again changes nothing.
    Verifying also clears the run of failed payouts."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        previous = user.payout_status
        if previous == payout_status:
            return user
        user.payout_status = payout_status
        fields = ["payout_status"]
        if payout_status == PayoutStatus.VERIFIED:
            user.payout_failures_in_row = 0
            fields.append("payout_failures_in_row")
        user.save(update_fields=fields)
        audit.record(actor, "user.payout_status", user, {"from": previous, "to": payout_status, "reason": reason})
        for listener in _PAYOUT_STATUS_LISTENERS:
            listener(user=user, previous=previous, actor=actor)
    return user


def user_count_payout_outcome(*, user_id: int, failed: bool) -> int:
    """Count a payout outcome for its payee; returns the failures in a row since
    the last settled payout. Runs in the caller's transaction."""
    if not failed:
        User.objects.filter(pk=user_id, payout_failures_in_row__gt=0).update(payout_failures_in_row=0)
        return 0
    user = User.objects.select_for_update().get(pk=user_id)
    user.payout_failures_in_row += 1
    user.save(update_fields=["payout_failures_in_row"])
    return user.payout_failures_in_row
