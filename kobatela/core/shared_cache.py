"""Django's shared cache (Redis in production) where it is a speed-up, never a condition.

:func:`cache_or` runs one cache operation and answers ``fallback`` when Redis
cannot be reached — or was found unreachable by this process in the last
few seconds (``REDIS_OUTAGES``), so an outage costs one timeout, not one per
call. Each fallback is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from kobatela.core.circuit_breaker import REDIS_OUTAGES, REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)
T = TypeVar("T")

SHARED_CACHE = "django-cache:default"  # this process's name for the cache's Redis in REDIS_OUTAGES


def cache_or(operation: Callable[[], T], *, fallback: T, when_down: str, **log_extra) -> T:
    """``operation()``, or ``fallback`` with the shared cache unreachable (``when_down`` says what happens instead)."""
    if REDIS_OUTAGES.is_down(SHARED_CACHE):
        return fallback
    try:
        return operation()
    except REDIS_UNAVAILABLE as exc:
        REDIS_OUTAGES.failed(SHARED_CACHE)
        logger.warning(f"shared cache unreachable: {when_down}",
                       extra={**log_extra, "error": f"{type(exc).__name__}: {exc}"[:200]})
        return fallback
