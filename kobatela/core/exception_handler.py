"""The one DRF exception handler: every API error leaves in the contract's shape.

Domain errors carry their own code and status; DRF's exceptions keep their
status and get a stable code; Django's ``Http404``/``PermissionDenied`` and an
oversized body are mapped too. Anything else is a bug: it is not caught here,
so Django's ``handler500`` answers (in the same shape) and the error is logged.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from kobatela.core.errors import DomainError, PayloadTooLarge, RateLimited
from kobatela.core.responses import error_body


def _drf_code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return exc.default_code


def _validation_details(detail: Any) -> dict[str, Any]:
    data = exceptions._get_error_details(detail)  # ErrorDetail → plain strings
    if isinstance(data, dict):
        return {key: [str(m) for m in value] if isinstance(value, list) else value for key, value in data.items()}
    return {"non_field_errors": data if isinstance(data, list) else [data]}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()

    if isinstance(exc, DomainError):
        response = Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
        if isinstance(exc, RateLimited) and exc.details and exc.details.get("retry_after"):
            response["Retry-After"] = str(exc.details["retry_after"])  # every limit, whoever raised it
        return response

    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let handler500 answer and the logs show it

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", "The request has invalid fields.", _validation_details(exc.detail))
    else:
        body = error_body(_drf_code(exc), str(exc.detail), None)
    return Response(body, status=exc.status_code, headers=headers)
