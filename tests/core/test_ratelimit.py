"""kobatela.core.ratelimit against the test Redis (atomic windows, threads) and
without it (process-local fallback), and the per-API-key limit on the API:
RateLimit-* headers on every keyed response, 429 rate_limited with Retry-After."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import redis

from kobatela.core import throttling
from kobatela.core.circuit_breaker import REDIS_OUTAGES
from kobatela.core.ratelimit import LOCAL, RateLimiter, Window
from tests.conftest import assert_error

REDIS_URL = os.environ.get("REDIS_URL", "")
NOW = 1_700_000_040.0  # on a minute boundary: the windows below do not roll over mid-test


@pytest.fixture
def limiter_on_redis():
    client = redis.Redis.from_url(REDIS_URL)
    made = []

    def make(windows):
        name = f"test-{uuid.uuid4().hex}"
        made.append(name)
        return RateLimiter(name, windows, redis=client, server=f"test:{REDIS_URL}")

    yield make
    for name in made:
        for key in client.scan_iter(match=f"kobatela:rl:{name}:*"):
            client.delete(key)
    client.close()


def test_burst_then_minute_windows_refuse_and_only_allowed_requests_count(limiter_on_redis):
    limiter = limiter_on_redis([Window(3, 1), Window(5, 60)])
    answers = [limiter.hit("k", now=NOW + 0.1) for _ in range(4)]
    assert [a.allowed for a in answers] == [True, True, True, False]
    assert [a.remaining for a in answers[:3]] == [2, 1, 0]
    refused = answers[3]
    assert (refused.limit, refused.remaining, refused.retry_after) == (3, 0, 1)
    assert refused.headers()["Retry-After"] == "1"
    # The next second: the minute window (5) is now the binding one.
    later = [limiter.hit("k", now=NOW + 1.5) for _ in range(3)]
    assert [a.allowed for a in later] == [True, True, False]
    assert later[2].limit == 5 and later[2].retry_after == 59
    assert limiter.hit("other-key", now=NOW + 1.5).allowed  # keys are independent


def test_the_limit_holds_across_threads(limiter_on_redis):
    limiter = limiter_on_redis([Window(50, 60)])
    allowed = []

    def worker():
        for _ in range(20):
            allowed.append(limiter.hit("shared", now=NOW + 1).allowed)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 50 and len(allowed) == 100


def test_an_unreachable_redis_counts_in_this_process_never_raises():
    from tests.faults.redis_servers import REFUSED_REDIS_URL

    REDIS_OUTAGES.clear()
    LOCAL.clear()
    client = redis.Redis.from_url(REFUSED_REDIS_URL, socket_connect_timeout=0.25, socket_timeout=0.25)
    limiter = RateLimiter(f"test-{uuid.uuid4().hex}", [Window(2, 60)], redis=client, server="test:refused")
    try:
        assert [limiter.hit("k", now=NOW).allowed for _ in range(3)] == [True, True, False]
    finally:
        REDIS_OUTAGES.clear()
        client.close()


@pytest.mark.django_db
def test_every_keyed_response_says_the_limit_and_the_429_says_when_to_retry(settings, sender_api):
    settings.RATE_LIMIT_BURST_PER_SECOND = 3
    settings.RATE_LIMIT_PER_MINUTE = 1000
    statuses = []
    for _ in range(6):
        response = sender_api.get("/api/v1/escrows")
        statuses.append(response.status_code)
        assert response["RateLimit-Limit"] in {"3", "1000"}
        assert int(response["RateLimit-Remaining"]) >= 0 and int(response["RateLimit-Reset"]) >= 1
    assert statuses[0] == 200 and 429 in statuses  # six requests cannot all fit in one-second windows of 3
    refused = sender_api.get("/api/v1/escrows")
    while refused.status_code != 429:
        refused = sender_api.get("/api/v1/escrows")
    error = assert_error(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1 and refused["RateLimit-Remaining"] == "0"
    assert error["details"]["retry_after"] == int(refused["Retry-After"])


@pytest.mark.django_db
def test_without_redis_the_api_limits_per_process(settings, sender_api):
    settings.REDIS_URL = ""
    settings.RATE_LIMIT_BURST_PER_SECOND = 1000
    settings.RATE_LIMIT_PER_MINUTE = 2
    LOCAL.clear()
    assert throttling.api_key_limiter().redis is None
    codes = [sender_api.get("/api/v1/escrows").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
