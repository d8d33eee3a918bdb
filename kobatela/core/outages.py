"""A part the request needs is down: answer 503 with ``Retry-After``, never 500.

Two places see such a failure, and both use :func:`outage_response`:

- :class:`OutageMiddleware` (``process_exception``) for anything a view
  raises — DRF's and Django's alike, in every mode, ``DEBUG`` included;
- ``kobatela.core.views.server_error`` (Django's ``handler500``) for what
  fails outside a view (a middleware reading the session or the cache).

Only the narrow errors that mean "unavailable" count: the database refusing
or dropping connections (``django.db.OperationalError``/``InterfaceError``,
psycopg's connection errors below them), and Redis unreachable or timing out.
Anything else is a bug and stays a 500. The client may retry with the same
``Idempotency-Key``: a 5xx is never stored (``kobatela.core.idempotency``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kobatela.core.responses import error_body

logger = logging.getLogger(__name__)

# (exception types, the part named in the answer)
_UNAVAILABLE: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((OperationalError, InterfaceError), "database"),
    ((RedisConnectionError, RedisTimeoutError), "cache"),
)


def unavailable_part(exc: BaseException | None) -> str | None:
    """Which part ``exc`` says is down (``"database"``, ``"cache"``), or None for any other error."""
    for types, part in _UNAVAILABLE:
        if isinstance(exc, types):
            return part
    return None


def outage_response(part: str, exc: BaseException) -> JsonResponse:
    logger.warning("answering 503: %s unavailable", part,
                   extra={"part": part, "error": f"{type(exc).__name__}: {exc}"[:300]})
    response = JsonResponse(
        error_body("service_unavailable", f"The service is briefly unavailable ({part}); retry shortly.",
                   {"unavailable": part}),
        status=503,
    )
    response["Retry-After"] = str(settings.OUTAGE_RETRY_AFTER_SECONDS)
    return response


class OutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        part = unavailable_part(exception)
        return outage_response(part, exception) if part else None
