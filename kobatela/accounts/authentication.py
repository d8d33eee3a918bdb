"""DRF authentication by API key: ``Authorization: Bearer <key>`` or ``X-API-Key``.

A verified key (and its user) is kept in this process's memory for
``API_KEY_CACHE_SECONDS``, under the key's public prefix; the hash is still
compared on every request, in constant time. Revoking a key forgets it here
at once; other processes drop it within those seconds (the measured cost of
a shared-cache round trip on every request was ~8% of a deposit's CPU).
``last_used_at`` is written at most once a minute per key: each process asks
the shared cache only once a minute, and a cache ``add`` elects the one
request that does the UPDATE.

Redis is optional here: the key is always verified from the database (and
this process's memory), never from the shared cache. When that cache does
not answer (down, or silent past ``REDIS_TIMEOUT_SECONDS``), the process
that asked does the UPDATE itself — still at most once a minute per key and
process — and the request goes on; for the next few seconds the process
does not ask it again (``kobatela.core.circuit_breaker.REDIS_OUTAGES``), so
an outage costs each process one timeout, not one per key.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from kobatela.accounts import keys
from kobatela.accounts.models import ApiKey
from kobatela.core.shared_cache import cache_or

# prefix → (monotonic expiry, ApiKey or None); key id → monotonic time of the last touch check.
_known_keys: dict[str, tuple[float, ApiKey | None]] = {}
_touched: dict[int, float] = {}


def forget_cached_key(prefix: str) -> None:
    _known_keys.pop(prefix, None)


def _presented_key(request) -> str | None:
    authorization = request.headers.get("Authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        return value.strip()
    value = request.headers.get("X-API-Key")
    return value.strip() if value else None


def _load(prefix: str) -> ApiKey | None:
    now = time.monotonic()
    entry = _known_keys.get(prefix)
    if entry is not None and entry[0] > now:
        return entry[1]
    api_key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if len(_known_keys) > 10_000:  # unknown prefixes from guessing must not grow memory
        _known_keys.clear()
    _known_keys[prefix] = (now + settings.API_KEY_CACHE_SECONDS, api_key)
    return api_key


def _touch(api_key: ApiKey) -> None:
    resolution = settings.API_KEY_LAST_USED_RESOLUTION_SECONDS
    now = time.monotonic()
    last_check = _touched.get(api_key.pk)
    if last_check is not None and last_check > now - resolution:
        return
    _touched[api_key.pk] = now
    if _elected_to_touch(api_key.pk, resolution):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())


def _elected_to_touch(key_id: int, resolution: int) -> bool:
    """Whether this request writes ``last_used_at``: the shared cache elects one
    request a minute across processes; without it, this process elects itself."""
    return bool(cache_or(lambda: cache.add(f"apikey:v1:touched:{key_id}", 1, resolution), fallback=True,
                         when_down="last_used_at written by this process", api_key_id=key_id))


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        presented = _presented_key(request)
        if presented is None:
            return None
        prefix = keys.parse_prefix(presented)
        api_key = _load(prefix) if prefix else None
        if api_key is None or not keys.matches(presented, api_key.key_hash):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.")
        if not api_key.user.is_active:
            raise exceptions.AuthenticationFailed("This account is disabled.")
        _touch(api_key)
        return api_key.user, api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="kobatela"'
