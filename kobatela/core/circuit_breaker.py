"""A circuit breaker and a daily call cap whose state lives in Redis, closed by default without it.

Every web worker and Celery process shares the same state, so an outage seen
by one process stops the calls of all of them. No Django import: pass a
``redis.Redis`` client (``decode_responses`` either way).

``CircuitBreaker`` states:

* **closed** – calls go through; failures are counted in fixed windows of
  ``window_seconds`` (``INCR`` + ``EXPIRE`` on a key per window); reaching
  ``failure_threshold`` failures in one window opens the breaker.
* **open** – :meth:`CircuitBreaker.allow` says no until ``cooldown_seconds``
  have passed since it opened.
* **half_open** – after the cooldown, exactly ONE caller across all processes
  gets a trial (``SET NX`` of a trial token with a short TTL,
  ``trial_timeout_seconds``: if the trial never reports back, another trial is
  allowed once the token expires, so keep it above the call's own timeout).
  The trial's :meth:`~CircuitBreaker.record_success` closes the breaker; its
  :meth:`~CircuitBreaker.record_failure` re-opens it for another cooldown.

Time comes from ``clock`` (default :func:`time.time`, looked up at each call
so ``time_machine`` moves it). Only the trial token's TTL uses Redis' own
clock. Keys: ``kobatela:cb:<name>:opened_at``, ``…:trial``,
``…:failures:<window number>``.

Usage::

    breaker = CircuitBreaker(redis_client, "openai", failure_threshold=5)
    if not breaker.allow():
        return None                      # skip the call, fail soft
    try:
        result = call()
    except TransientError:
        breaker.record_failure()
        raise
    breaker.record_success()

When Redis cannot be reached — refused, reset, or silent past the client's
socket timeout (``REDIS_TIMEOUT_SECONDS``, under a second, for the clients
Kobatela builds) — neither class raises: the operation runs again, whole, on
a store in this process's memory that speaks the few commands used here, and
for :data:`RETRY_REDIS_AFTER_SECONDS` that Redis server is not asked again by
this process (:data:`REDIS_OUTAGES`, which other Redis clients with a fallback
use too), so an outage costs one timeout, not one per call. That local
fallback is **closed by default**:

* the breaker starts closed in each process and opens on that process's own
  failures (same threshold, window, cool-down and single trial): an outage
  of Redis must not also switch the advisor off, while an outage of the
  advisor is still cut off, process by process;
* the daily cap counts each process's own calls against the same limit: a
  whole day without Redis allows at most ``processes × limit`` calls, a
  bounded bill, rather than no cap at all or no advisor at all.

Local counts are not copied to Redis when it answers again: the shared state
resumes where Redis left it. Each fallback is logged and counted in
``kobatela_redis_fallbacks_total`` (by breaker or cap name).

``DailyCap`` counts calls per UTC day (``kobatela:cap:<name>:<YYYY-MM-DD>``,
expiring after 2 days); :meth:`DailyCap.try_acquire` refuses above ``limit``
and a refused call is not counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["CLOSED", "OPEN", "HALF_OPEN", "CircuitBreaker", "DailyCap", "REDIS_OUTAGES", "REDIS_UNAVAILABLE",
           "RETRY_REDIS_AFTER_SECONDS", "RedisOutages"]

logger = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

Clock = Callable[[], float]
T = TypeVar("T")

# Once a Redis server failed, this process leaves it alone for this long.
RETRY_REDIS_AFTER_SECONDS = 5.0
# What "Redis cannot be reached" raises (redis-py wraps socket errors; OSError for the rest).
REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)

REDIS_FALLBACKS = Counter(
    "kobatela_redis_fallbacks_total",
    "Breaker and daily-cap operations answered from process memory because Redis could not be reached, by name.",
    ["name"],
)


def _now(clock: Clock | None) -> float:
    return clock() if clock is not None else time.time()


def _to_str(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class _LocalStore:
    """The Redis commands this module uses (GET, SET NX EX, DELETE, INCR, DECR,
    EXPIRE, MULTI pipelines), in this process's memory, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._data: dict[str, tuple[str, float | None]] = {}  # key → (value, monotonic expiry)

    def _live(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= time.monotonic():
            del self._data[key]
            return None
        return entry[0]

    def _purge_expired(self) -> None:
        if len(self._data) > 1000:  # keys of past windows and days are never read again
            now = time.monotonic()
            for key in [k for k, (_, expiry) in self._data.items() if expiry is not None and expiry <= now]:
                del self._data[key]

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def set(self, key: str, value, *, nx: bool = False, ex: int | None = None) -> bool | None:
        with self._lock:
            if nx and self._live(key) is not None:
                return None
            self._purge_expired()
            self._data[key] = (str(value), time.monotonic() + ex if ex else None)
            return True

    def delete(self, *keys: str) -> int:
        with self._lock:
            return sum(self._data.pop(key, None) is not None for key in keys)

    def incr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            current = self._live(key)
            expiry = self._data[key][1] if current is not None else None  # INCR keeps the TTL
            value = int(current or 0) + amount
            self._data[key] = (str(value), expiry)
            return value

    def decr(self, key: str) -> int:
        return self.incr(key, -1)

    def expire(self, key: str, seconds: int) -> bool:
        with self._lock:
            value = self._live(key)
            if value is None:
                return False
            self._data[key] = (value, time.monotonic() + seconds)
            return True

    def pipeline(self, transaction: bool = True) -> _LocalPipeline:
        return _LocalPipeline(self)


class _LocalPipeline:
    _COMMANDS = frozenset({"get", "set", "delete", "incr", "decr", "expire"})

    def __init__(self, store: _LocalStore) -> None:
        self._store = store
        self._calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, command: str):
        if command not in self._COMMANDS:
            raise AttributeError(command)

        def queue(*args, **kwargs) -> _LocalPipeline:
            self._calls.append((command, args, kwargs))
            return self
        return queue

    def execute(self) -> list[Any]:
        with self._store._lock:  # MULTI/EXEC: nothing runs in between
            return [getattr(self._store, command)(*args, **kwargs) for command, args, kwargs in self._calls]


class RedisOutages:
    """The Redis servers this process found unreachable lately. For
    :data:`RETRY_REDIS_AFTER_SECONDS` after a failure, a caller that has a
    fallback uses it at once: a frozen Redis then costs each process one
    timeout every few seconds, not one per call (per API key, per breaker…)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # server → monotonic time before which it is not asked

    def is_down(self, server: str) -> bool:
        return self._until.get(server, 0.0) > time.monotonic()

    def failed(self, server: str) -> None:
        self._until[server] = time.monotonic() + RETRY_REDIS_AFTER_SECONDS

    def clear(self) -> None:
        self._until.clear()


REDIS_OUTAGES = RedisOutages()
_LOCAL = _LocalStore()


_CLIENTS: dict[str, Any] = {}


def redis_client(url: str):
    """This process's client for ``url``: one connection pool, reused, with the
    sub-second timeouts of ``REDIS_CLIENT_OPTIONS`` (so an outage costs a short wait)."""
    client = _CLIENTS.get(url)
    if client is None:
        import redis
        from django.conf import settings

        client = _CLIENTS[url] = redis.Redis.from_url(url, **settings.REDIS_CLIENT_OPTIONS)
    return client


def redis_server_name(redis) -> str:
    """The name an outage of this client's server is recorded under in ``REDIS_OUTAGES``
    (host:port/db): every client of one server shares the record, so an outage costs one timeout."""
    kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", None) or {}
    if not kwargs:
        return f"client:{id(redis)}"
    return f"{kwargs.get('path') or kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db')}"


class _RedisOrLocal:
    """Runs each operation on Redis, or — Redis unreachable — whole on the local store."""

    def __init__(self, redis, name: str) -> None:
        self.redis = redis
        self.name = name
        self._server = redis_server_name(redis)

    def _run(self, operation: Callable[[Any], T]) -> T:
        if not REDIS_OUTAGES.is_down(self._server):
            try:
                return operation(self.redis)
            except REDIS_UNAVAILABLE as exc:
                REDIS_OUTAGES.failed(self._server)
                logger.warning("redis unreachable: breaker and cap state kept in this process",
                               extra={"guard": self.name, "error": f"{type(exc).__name__}: {exc}"[:200]})
        REDIS_FALLBACKS.labels(name=self.name).inc()
        return operation(_LOCAL)


class CircuitBreaker(_RedisOrLocal):
    def __init__(
        self,
        redis,
        name: str,
        *,
        failure_threshold: int = 5,
        window_seconds: int = 60,
        cooldown_seconds: float = 30,
        trial_timeout_seconds: int = 30,
        clock: Clock | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if window_seconds < 1 or cooldown_seconds <= 0 or trial_timeout_seconds < 1:
            raise ValueError("window_seconds, cooldown_seconds and trial_timeout_seconds must be positive")
        super().__init__(redis, name)
        self.failure_threshold = int(failure_threshold)
        self.window_seconds = int(window_seconds)
        self.cooldown_seconds = float(cooldown_seconds)
        self.trial_timeout_seconds = int(trial_timeout_seconds)
        self._clock = clock
        prefix = f"kobatela:cb:{name}"
        self._opened_key = f"{prefix}:opened_at"
        self._trial_key = f"{prefix}:trial"
        self._failures_prefix = f"{prefix}:failures"

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r}>"

    # -- reading ---------------------------------------------------------

    def _opened_at(self, store) -> float | None:
        raw = _to_str(store.get(self._opened_key))
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    def _state_at(self, opened_at: float | None, now: float) -> str:
        if opened_at is None:
            return CLOSED
        return OPEN if now < opened_at + self.cooldown_seconds else HALF_OPEN

    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (half-open: cooldown over, trial pending or possible)."""
        return self._run(lambda store: self._state_at(self._opened_at(store), _now(self._clock)))

    def failure_count(self) -> int:
        """Failures counted in the current window (closed state)."""
        raw = self._run(lambda store: _to_str(store.get(self._failures_key(_now(self._clock)))))
        return int(raw) if raw else 0

    def _failures_key(self, now: float) -> str:
        return f"{self._failures_prefix}:{int(now // self.window_seconds)}"

    # -- deciding --------------------------------------------------------

    def allow(self) -> bool:
        """May a call go out now? Half-open: True for exactly one caller (the trial)."""
        return self._run(self._allow)

    def _allow(self, store) -> bool:
        state = self._state_at(self._opened_at(store), _now(self._clock))
        if state == CLOSED:
            return True
        if state == OPEN:
            return False
        # Half-open: one trial token, shared by every process.
        return bool(store.set(self._trial_key, "1", nx=True, ex=self.trial_timeout_seconds))

    # -- reporting -------------------------------------------------------

    def record_success(self) -> None:
        """The call worked: close the breaker and forget counted failures."""
        now = _now(self._clock)
        self._run(lambda store: store.delete(
            self._opened_key,
            self._trial_key,
            self._failures_key(now),
            self._failures_key(now - self.window_seconds),
        ))

    def record_failure(self) -> None:
        """The call failed (timeout, outage): count it, maybe open or re-open."""
        self._run(self._record_failure)

    def _record_failure(self, store) -> None:
        now = _now(self._clock)
        state = self._state_at(self._opened_at(store), now)
        if state == HALF_OPEN:
            # The trial failed: another full cooldown, then another single trial.
            pipe = store.pipeline(transaction=True)
            pipe.set(self._opened_key, repr(now))
            pipe.delete(self._trial_key)
            pipe.execute()
            return
        if state == OPEN:
            # A late failure from a call started before opening: nothing to add.
            return
        # Fixed windows plus the previous one: two failures a moment apart
        # still count together when a window boundary falls between them.
        key = self._failures_key(now)
        pipe = store.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.window_seconds * 2)
        pipe.get(self._failures_key(now - self.window_seconds))
        count, _, previous = pipe.execute()
        if int(count) + int(previous or 0) >= self.failure_threshold:
            # NX: when several processes cross the threshold together, the first opening stands.
            if store.set(self._opened_key, repr(now), nx=True):
                store.delete(self._trial_key, key, self._failures_key(now - self.window_seconds))

    def reset(self) -> None:
        """Forget everything (tests, admin action)."""
        self.record_success()


class DailyCap(_RedisOrLocal):
    """At most ``limit`` acquisitions per UTC day, shared by every process
    (without Redis: per process, see the module's docstring)."""

    def __init__(self, redis, name: str, limit: int, *, clock: Clock | None = None) -> None:
        super().__init__(redis, name)
        self.limit = int(limit)
        self._clock = clock

    def __repr__(self) -> str:
        return f"<DailyCap {self.name!r} limit={self.limit}>"

    def _key(self) -> str:
        day = datetime.fromtimestamp(_now(self._clock), tz=timezone.utc).date().isoformat()
        return f"kobatela:cap:{self.name}:{day}"

    def try_acquire(self) -> bool:
        """Count one call if today's count is below ``limit``; refused calls are not counted."""
        if self.limit <= 0:
            return False
        return self._run(self._try_acquire)

    def _try_acquire(self, store) -> bool:
        key = self._key()
        pipe = store.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 2 * 86400)
        count, _ = pipe.execute()
        if int(count) > self.limit:
            # Each refused caller takes back only its own increment, so exactly
            # `limit` callers ever see a count <= limit.
            store.decr(key)
            return False
        return True

    def used(self) -> int:
        """Calls counted today."""
        raw = self._run(lambda store: _to_str(store.get(self._key())))
        return int(raw) if raw else 0

    def remaining(self) -> int:
        return max(0, self.limit - self.used())
