"""kobatela.core.circuit_breaker against a real Redis (REDIS_URL), no database,
and against an unreachable one (refused, or frozen: silent until the client's
timeout), where this process keeps the state, closed by default.

Each test uses its own breaker / cap names, so tests can share one Redis with
other tests (and run in parallel) without flushing anything.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from kobatela.core.circuit_breaker import CircuitBreaker, DailyCap

REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="REDIS_URL is not set: these tests need a real Redis server")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    created: list[str] = []
    client.ping()
    yield client, created
    for pattern in created:
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture
def make_breaker(redis_client):
    client, created = redis_client

    def make(clock=None, **kwargs):
        name = f"test-{uuid.uuid4().hex}"
        created.append(f"kobatela:cb:{name}:*")
        defaults = {"failure_threshold": 3, "window_seconds": 60, "cooldown_seconds": 30}
        defaults.update(kwargs)
        return CircuitBreaker(client, name, clock=clock, **defaults)

    return make


@pytest.fixture
def make_cap(redis_client):
    client, created = redis_client

    def make(limit, clock=None):
        name = f"test-{uuid.uuid4().hex}"
        created.append(f"kobatela:cap:{name}:*")
        return DailyCap(client, name, limit, clock=clock)

    return make


def _open(breaker):
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()
    assert breaker.state() == "open"


# --------------------------------------------------------------------------- breaker


def test_closed_breaker_allows_and_counts_failures(make_breaker):
    breaker = make_breaker(clock=FakeClock())
    assert breaker.state() == "closed"
    assert breaker.allow() is True
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.failure_count() == 2
    assert breaker.state() == "closed"
    assert breaker.allow() is True


def test_opens_at_threshold_and_rejects_while_open(make_breaker):
    clock = FakeClock()
    breaker = make_breaker(clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state() == "closed"
    breaker.record_failure()  # third = threshold
    assert breaker.state() == "open"
    for _ in range(5):
        assert breaker.allow() is False
    clock.advance(29.9)
    assert breaker.state() == "open"
    assert breaker.allow() is False


def test_failures_outside_the_window_do_not_add_up(make_breaker):
    clock = FakeClock(now=1_700_000_000.0 - (1_700_000_000.0 % 60))  # start of a window
    breaker = make_breaker(clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(121)  # two windows later: the old failures are forgotten
    breaker.record_failure()
    assert breaker.state() == "closed"
    assert breaker.failure_count() == 1


def test_failures_either_side_of_a_window_boundary_add_up(make_breaker):
    start = 1_700_000_000.0 - (1_700_000_000.0 % 60)
    clock = FakeClock(now=start + 59.9)  # the last moment of a window
    breaker = make_breaker(clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(0.2)  # the next window
    breaker.record_failure()
    assert breaker.state() == "open"


def test_failure_keys_expire(make_breaker, redis_client):
    client, _ = redis_client
    breaker = make_breaker(clock=FakeClock())
    breaker.record_failure()
    keys = list(client.scan_iter(match=f"kobatela:cb:{breaker.name}:failures:*"))
    assert len(keys) == 1
    assert 0 < client.ttl(keys[0]) <= 120


def test_half_open_after_cooldown_lets_exactly_one_trial(make_breaker):
    clock = FakeClock()
    breaker = make_breaker(clock=clock)
    _open(breaker)
    clock.advance(30)
    assert breaker.state() == "half_open"
    assert breaker.allow() is True  # the trial
    assert breaker.allow() is False  # everyone else waits for its outcome
    assert breaker.state() == "half_open"


def test_half_open_one_trial_across_ten_threads(make_breaker, redis_client):
    import redis

    clock = FakeClock()
    breaker = make_breaker(clock=clock)
    _open(breaker)
    clock.advance(31)

    # Ten "processes": each thread has its own connection and its own breaker object.
    barrier = threading.Barrier(10)
    results: list[bool] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker():
        client = redis.Redis.from_url(REDIS_URL)
        try:
            mine = CircuitBreaker(client, breaker.name, failure_threshold=3, cooldown_seconds=30, clock=clock)
            barrier.wait(timeout=10)
            allowed = mine.allow()
            with lock:
                results.append(allowed)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    assert not errors
    assert len(results) == 10
    assert results.count(True) == 1


def test_success_in_half_open_closes(make_breaker):
    clock = FakeClock()
    breaker = make_breaker(clock=clock)
    _open(breaker)
    clock.advance(30)
    assert breaker.allow() is True
    breaker.record_success()
    assert breaker.state() == "closed"
    assert breaker.failure_count() == 0
    assert all(breaker.allow() for _ in range(5))
    # Counting starts again from zero.
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state() == "closed"


def test_failure_in_half_open_reopens_for_another_cooldown(make_breaker):
    clock = FakeClock()
    breaker = make_breaker(clock=clock)
    _open(breaker)
    clock.advance(30)
    assert breaker.allow() is True
    breaker.record_failure()  # the trial failed
    assert breaker.state() == "open"
    assert breaker.allow() is False
    clock.advance(29)
    assert breaker.allow() is False
    clock.advance(1)
    assert breaker.state() == "half_open"
    assert breaker.allow() is True  # a new single trial
    assert breaker.allow() is False


def test_late_failure_while_open_does_not_extend_cooldown(make_breaker):
    clock = FakeClock()
    breaker = make_breaker(clock=clock)
    _open(breaker)
    clock.advance(20)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.state() == "half_open"


def test_trial_token_expires_if_trial_never_reports(make_breaker, redis_client):
    client, _ = redis_client
    clock = FakeClock()
    breaker = make_breaker(clock=clock, trial_timeout_seconds=7)
    _open(breaker)
    clock.advance(30)
    assert breaker.allow() is True
    ttl = client.ttl(f"kobatela:cb:{breaker.name}:trial")
    assert 0 < ttl <= 7


def test_breakers_are_isolated_by_name(make_breaker):
    clock = FakeClock()
    a, b = make_breaker(clock=clock), make_breaker(clock=clock)
    _open(a)
    assert b.state() == "closed"
    assert b.allow() is True


def test_time_machine_moves_the_default_clock(make_breaker):
    time_machine = pytest.importorskip("time_machine")
    with time_machine.travel(datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc), tick=False) as traveller:
        breaker = make_breaker()  # clock=None: time.time()
        _open(breaker)
        traveller.shift(31)
        assert breaker.state() == "half_open"


def test_rejects_bad_settings(redis_client):
    client, _ = redis_client
    with pytest.raises(ValueError):
        CircuitBreaker(client, "x", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(client, "x", cooldown_seconds=0)


# --------------------------------------------------------------------------- daily cap


def test_daily_cap_refuses_above_limit_without_counting_refusals(make_cap):
    cap = make_cap(3, clock=FakeClock())
    assert [cap.try_acquire() for _ in range(5)] == [True, True, True, False, False]
    assert cap.used() == 3
    assert cap.remaining() == 0


def test_daily_cap_resets_on_the_next_utc_day(make_cap, redis_client):
    client, _ = redis_client
    clock = FakeClock(now=datetime(2030, 5, 1, 23, 59, 59, tzinfo=timezone.utc).timestamp())
    cap = make_cap(1, clock=clock)
    assert cap.try_acquire() is True
    assert cap.try_acquire() is False
    key = f"kobatela:cap:{cap.name}:2030-05-01"
    assert int(client.get(key)) == 1
    assert 86400 < client.ttl(key) <= 2 * 86400
    clock.advance(1)  # 2030-05-02 00:00:00 UTC
    assert cap.try_acquire() is True
    assert cap.used() == 1


def test_daily_cap_is_exact_under_concurrency(make_cap):
    cap = make_cap(5, clock=FakeClock())
    barrier = threading.Barrier(12)
    results: list[bool] = []
    lock = threading.Lock()

    def worker():
        barrier.wait(timeout=10)
        got = cap.try_acquire()
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    assert results.count(True) == 5
    assert cap.used() == 5


def test_daily_cap_zero_limit_refuses(make_cap):
    cap = make_cap(0, clock=FakeClock())
    assert cap.try_acquire() is False
    assert cap.used() == 0


# --------------------------------------------------------------------------- without Redis
# An unreachable Redis (refused, or silent past the client's socket timeout)
# never raises out of the breaker or the cap: this process keeps the state, closed by default.


@pytest.fixture
def fallback():
    """Clients of an unreachable Redis, and a clean slate of known outages afterwards."""
    import redis

    from kobatela.core.circuit_breaker import REDIS_OUTAGES
    from tests.faults.redis_servers import REFUSED_REDIS_URL, silent_redis

    clients = []

    def client(url):
        made = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)
        clients.append(made)
        return made

    REDIS_OUTAGES.clear()
    with silent_redis() as silent_url:
        yield {"refused": lambda: client(REFUSED_REDIS_URL), "silent": lambda: client(silent_url)}
    for made in clients:
        made.close()
    REDIS_OUTAGES.clear()


def _fallbacks(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("kobatela_redis_fallbacks_total", {"name": name}) or 0.0


@pytest.mark.parametrize("outage", ["refused", "silent"])
def test_without_redis_the_breaker_starts_closed_and_opens_on_this_process_failures(fallback, outage):
    clock = FakeClock()
    breaker = CircuitBreaker(fallback[outage](), f"test-{uuid.uuid4().hex}", failure_threshold=3, cooldown_seconds=30,
                             clock=clock)
    assert breaker.allow() is True and breaker.state() == "closed"
    _open(breaker)
    assert breaker.allow() is False
    clock.advance(30)
    assert breaker.allow() is True  # the single trial, in this process
    assert breaker.allow() is False
    breaker.record_success()
    assert breaker.state() == "closed"
    assert _fallbacks(breaker.name) >= 10


@pytest.mark.parametrize("outage", ["refused", "silent"])
def test_without_redis_the_daily_cap_counts_this_process_calls_against_the_same_limit(fallback, outage):
    cap = DailyCap(fallback[outage](), f"test-{uuid.uuid4().hex}", 2, clock=FakeClock())
    assert [cap.try_acquire() for _ in range(4)] == [True, True, False, False]
    assert cap.used() == 2 and cap.remaining() == 0


def test_a_frozen_redis_costs_one_timeout_then_the_process_answers_from_memory(fallback):
    client = fallback["silent"]()
    breaker = CircuitBreaker(client, f"test-{uuid.uuid4().hex}", clock=FakeClock())
    cap = DailyCap(client, f"test-{uuid.uuid4().hex}", 100, clock=FakeClock())
    started = time.monotonic()
    assert breaker.allow() is True
    first = time.monotonic() - started
    assert 0.2 <= first < 1.0  # the client's socket timeout, once
    started = time.monotonic()
    for _ in range(20):  # other breakers and caps on the same server skip it too
        assert breaker.allow() is True and cap.try_acquire() is True
        breaker.record_success()
    assert time.monotonic() - started < 0.2


def test_redis_is_asked_again_after_a_while_and_local_counts_stay_local(make_breaker, redis_client, monkeypatch):
    from kobatela.core import circuit_breaker

    client, _ = redis_client
    breaker = make_breaker(clock=FakeClock())
    monkeypatch.setattr(circuit_breaker, "RETRY_REDIS_AFTER_SECONDS", 0.05)
    circuit_breaker.REDIS_OUTAGES.failed(breaker._server)  # as a timeout would have
    try:
        breaker.record_failure()  # counted in this process
        assert breaker.failure_count() == 1
        time.sleep(0.06)
        assert breaker.failure_count() == 0  # Redis again: the local count was not copied there
        breaker.record_failure()
        keys = list(client.scan_iter(match=f"kobatela:cb:{breaker.name}:failures:*"))
        assert [int(client.get(key)) for key in keys] == [1]
    finally:
        circuit_breaker.REDIS_OUTAGES.clear()


def test_the_advisor_guards_share_one_client_per_process():
    """One connection pool reused by every AI call (its timeouts: tests/faults/test_redis_freeze.py)."""
    from proofs.services import _advisor_guards

    breaker, cap = _advisor_guards()
    again, _ = _advisor_guards()
    assert breaker.redis is cap.redis is again.redis
