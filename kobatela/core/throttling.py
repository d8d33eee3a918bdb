"""The per-API-key rate limit every API view applies (docs/api.md "Limits").

Settings: ``RATE_LIMIT_ENABLED``, ``RATE_LIMIT_BURST_PER_SECOND`` (100) and
``RATE_LIMIT_PER_MINUTE`` (6000), counted in Redis (``REDIS_URL``) by
:mod:`kobatela.core.ratelimit`, in process memory without it. The key is the
API key's public prefix (unique, never the secret). Requests without an API key
(provider webhooks, health) are not limited here.
"""

from __future__ import annotations

from django.conf import settings

from kobatela.core.circuit_breaker import redis_client
from kobatela.core.errors import RateLimited
from kobatela.core.ratelimit import Decision, RateLimiter, Window

_limiters: dict[tuple, RateLimiter] = {}


def shared_limiter(name: str, windows: tuple[Window, ...]) -> RateLimiter:
    """The limiter ``name`` with these windows, counting in Redis (``REDIS_URL``) for
    every process, in process memory without it; one per configuration (rebuilt when
    the settings change, e.g. in tests). Every limit of the product goes through here."""
    config = (name, settings.REDIS_URL, windows)
    limiter = _limiters.get(config)
    if limiter is None:
        client = redis_client(settings.REDIS_URL) if settings.REDIS_URL else None
        limiter = _limiters[config] = RateLimiter(name, list(windows), redis=client)
    return limiter


def api_key_limiter() -> RateLimiter:
    return shared_limiter("apikey", (Window(settings.RATE_LIMIT_BURST_PER_SECOND, 1),
                                     Window(settings.RATE_LIMIT_PER_MINUTE, 60)))


def api_key_decision(api_key) -> Decision | None:
    """Count one request of ``api_key`` (any object with a ``prefix``); ``None`` when not limited."""
    prefix = getattr(api_key, "prefix", None)
    if not settings.RATE_LIMIT_ENABLED or not prefix:
        return None
    return api_key_limiter().hit(f"apikey:{prefix}")


def refusal(decision: Decision, message: str | None = None) -> RateLimited:
    return RateLimited(message=message, details={"retry_after": decision.retry_after, "limit": decision.limit})
