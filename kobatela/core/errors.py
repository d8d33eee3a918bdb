"""One error hierarchy for the whole product.

Every refusal the API can give is a :class:`DomainError` (or a subclass) with a
stable snake_case ``code`` and an HTTP ``status``. Services raise them; the one
DRF exception handler (``kobatela.core.exception_handler``) renders them in the
contract's shape::

    {"error": {"code": ..., "message": ..., "details": ... | null, "request_id": ...}}

Raise with a specific code rather than subclassing for every case::

    raise Conflict("escrow_not_fundable", "Escrow is RELEASED.", details={"status": "RELEASED"})
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    default_code: str = "bad_request"
    default_message: str = "The request could not be processed."

    def __init__(
        self,
        code: str | None = None,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.default_message
        self.details = details
        if status is not None:
            self.status = status
        super().__init__(f"{self.code}: {self.message}")


class BadRequest(DomainError):
    status = 400
    default_code = "bad_request"


class ValidationFailed(DomainError):
    """Input is well-formed but breaks a field rule (400)."""

    status = 400
    default_code = "validation_error"
    default_message = "The request has invalid fields."


class Unauthenticated(DomainError):
    status = 401
    default_code = "not_authenticated"
    default_message = "Authentication credentials were not provided or are invalid."


class Forbidden(DomainError):
    status = 403
    default_code = "permission_denied"
    default_message = "You do not have permission to perform this action."


class NotFound(DomainError):
    status = 404
    default_code = "not_found"
    default_message = "Not found."


class Conflict(DomainError):
    status = 409
    default_code = "conflict"
    default_message = "The request conflicts with the current state."


class Gone(DomainError):
    """The thing existed and no longer answers (an expired, revoked or used-up upload link)."""

    status = 410
    default_code = "gone"
    default_message = "This link no longer accepts anything."


class PayloadTooLarge(DomainError):
    status = 413
    default_code = "payload_too_large"
    default_message = "The request body is too large."


class UnsupportedMediaType(DomainError):
    status = 415
    default_code = "unsupported_media_type"
    default_message = "This file type is not accepted."


class Unprocessable(DomainError):
    """The input was understood and is refused by a rule (422)."""

    status = 422
    default_code = "unprocessable"
    default_message = "The request was refused by a validation rule."


class ServiceUnavailable(DomainError):
    status = 503
    default_code = "service_unavailable"
    default_message = "The service is not available."


class RateLimited(DomainError):
    """Over a rate limit (429); the response carries ``Retry-After`` and the ``RateLimit-*`` headers."""

    status = 429
    default_code = "rate_limited"
    default_message = "Too many requests for this API key; retry after the number of seconds in Retry-After."
