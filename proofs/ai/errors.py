"""Why the AI advisor gave no opinion. Callers catch :class:`AdvisorError` and
record its ``reason`` (a short code for logs and metrics) on the proof."""

from __future__ import annotations

__all__ = ["AdvisorError", "AdvisorInvalidResponse", "AdvisorTimeout", "AdvisorUnavailable"]


class AdvisorError(Exception):
    """The advisor gave no usable opinion. ``reason`` is a short code for logs and metrics."""

    reason = "error"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        super().__init__(message or self.reason)


class AdvisorTimeout(AdvisorError):
    reason = "timeout"


class AdvisorUnavailable(AdvisorError):
    """Connection error, 5xx, rate limit, or a request the provider refused (auth, 4xx)."""

    reason = "unavailable"


class AdvisorInvalidResponse(AdvisorError):
    reason = "invalid_response"
