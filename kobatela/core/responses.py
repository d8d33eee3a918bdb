"""The contract's error body, built in one place."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from kobatela.core.errors import DomainError
from kobatela.core.request_context import get_request_id


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": get_request_id(),
        }
    }


def error_response(error: DomainError) -> JsonResponse:
    """A plain Django response in the error shape, for code outside DRF."""
    return JsonResponse(error_body(error.code, error.message, error.details), status=error.status)
