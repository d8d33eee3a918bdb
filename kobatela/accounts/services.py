from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from kobatela.accounts import keys
from kobatela.accounts.authentication import forget_cached_key
from kobatela.accounts.models import ApiKey, User
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
