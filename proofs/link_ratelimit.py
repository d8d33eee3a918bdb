"""Rate limits of the upload links (``/u/{token}``): per link and per client IP.

One fixed one-minute window per bucket in the shared cache (Redis): an
``add`` starts the window, an ``incr`` counts. Kept small and on its own so
it can be folded into the API keys' limiter (``kobatela.core.ratelimit``);
its one entry point is :func:`upload_link_throttle`. When the shared cache
does not answer, requests pass (logged): the link's cap and lifetime still
hold, they are checked in the database.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled

from kobatela.core.shared_cache import cache_or

WINDOW_SECONDS = 60


def _count(bucket: str) -> int:
    window = int(time.time() // WINDOW_SECONDS)
    key = f"uploadlink:rl:v1:{bucket}:{window}"
    cache.add(key, 0, WINDOW_SECONDS + 5)
    return cache.incr(key)


def upload_link_throttle(*, link_key: str, client_ip: str) -> None:
    """Count one request to an upload link; ``Throttled`` (429 ``rate_limited``,
    ``Retry-After``) past ``UPLOAD_LINK_RATE_PER_LINK`` a minute for the link or
    ``UPLOAD_LINK_RATE_PER_IP`` a minute for the address. ``link_key`` is the
    token's hash (never the token)."""
    for bucket, limit in ((f"link:{link_key}", settings.UPLOAD_LINK_RATE_PER_LINK),
                          (f"ip:{client_ip}", settings.UPLOAD_LINK_RATE_PER_IP)):
        count = cache_or(lambda bucket=bucket: _count(bucket), fallback=0,
                         when_down="upload link request not rate limited", bucket=bucket.split(":")[0])
        if count > limit:
            wait = WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS
            raise Throttled(wait=wait, detail="Too many requests to this upload link; try again shortly.",
                            code="rate_limited")
