"""Rate limits of the upload links (``/u/{token}``): per link and per client IP,
one minute windows, through the product's one limiter
(:func:`kobatela.core.throttling.shared_limiter`: atomic windows in Redis,
counted in process memory when Redis is unavailable — never a 500).
"""

from __future__ import annotations

from django.conf import settings

from kobatela.core.ratelimit import Decision, Window
from kobatela.core.throttling import refusal, shared_limiter

MESSAGE = "Too many requests to this upload link; try again shortly."


def upload_link_throttle(*, link_key: str, client_ip: str) -> Decision:
    """Count one request to an upload link; ``RateLimited`` (429 ``rate_limited``,
    ``Retry-After``) past ``UPLOAD_LINK_RATE_PER_LINK`` a minute for the link or
    ``UPLOAD_LINK_RATE_PER_IP`` a minute for the address. ``link_key`` is the
    token's hash (never the token). Returns the binding decision (its headers)."""
    decisions = [
        shared_limiter("upload-link", (Window(settings.UPLOAD_LINK_RATE_PER_LINK, 60),)).hit(f"link:{link_key}"),
        shared_limiter("upload-ip", (Window(settings.UPLOAD_LINK_RATE_PER_IP, 60),)).hit(f"ip:{client_ip}"),
    ]
    for decision in decisions:
        if not decision.allowed:
            raise refusal(decision, MESSAGE)
    return min(decisions, key=lambda d: d.remaining)
