"""Django-level error handlers, so that errors outside DRF keep the contract's shape."""

from __future__ import annotations

import logging
import sys

from django.http import JsonResponse

from kobatela.core.outages import outage_response, unavailable_part
from kobatela.core.responses import error_body

logger = logging.getLogger(__name__)


def bad_request(request, exception=None):
    return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)


def permission_denied(request, exception=None):
    return JsonResponse(error_body("permission_denied", "You do not have permission to access this."), status=403)


def page_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "No such resource."), status=404)


def server_error(request):
    # Called inside Django's except block: the exception is the one being handled.
    exc = sys.exc_info()[1]
    part = unavailable_part(exc)
    if part is not None:
        return outage_response(part, exc)
    return JsonResponse(
        error_body("internal_error", "An internal error occurred. Quote the request id to support."), status=500
    )


def csrf_failure(request, reason=""):
    return JsonResponse(error_body("csrf_failed", "CSRF verification failed.", {"reason": reason}), status=403)
