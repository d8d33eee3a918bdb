"""DRF authentication by API key: ``Authorization: Bearer <key>`` or ``X-API-Key``.

The verified key and its user are cached for ``API_KEY_CACHE_SECONDS`` under
the key's public prefix (the hash is still compared on every request, in
constant time). Revoking a key deletes the entry, so on a shared cache
(Redis) revocation is immediate and on a per-process cache it takes effect
within those seconds. ``last_used_at`` is written at most once a minute per
key: a cache ``add`` elects the one request that does the UPDATE.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from kobatela.accounts import keys
from kobatela.accounts.models import ApiKey

CACHE_KEY = "apikey:v1:{prefix}"


def cache_key(prefix: str) -> str:
    return CACHE_KEY.format(prefix=prefix)


def forget_cached_key(prefix: str) -> None:
    cache.delete(cache_key(prefix))


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
    entry = cache.get(cache_key(prefix))
    if entry is not None:
        return entry or None  # False caches "no such prefix"
    api_key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    cache.set(cache_key(prefix), api_key or False, settings.API_KEY_CACHE_SECONDS)
    return api_key


def _touch(api_key: ApiKey) -> None:
    resolution = settings.API_KEY_LAST_USED_RESOLUTION_SECONDS
    if cache.add(f"apikey:v1:touched:{api_key.pk}", 1, resolution):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())


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
