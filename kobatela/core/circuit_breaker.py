"""A circuit breaker and a daily call cap whose state lives in Redis.

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

Redis errors are not swallowed: the caller decides whether an unreachable
Redis means "call anyway" or "skip".

``DailyCap`` counts calls per UTC day (``kobatela:cap:<name>:<YYYY-MM-DD>``,
expiring after 2 days); :meth:`DailyCap.try_acquire` refuses above ``limit``
and a refused call is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["CLOSED", "OPEN", "HALF_OPEN", "CircuitBreaker", "DailyCap"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

Clock = Callable[[], float]


def _now(clock: Clock | None) -> float:
    return clock() if clock is not None else time.time()


def _to_str(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class CircuitBreaker:
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
        self.redis = redis
        self.name = name
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

    def _opened_at(self) -> float | None:
        raw = _to_str(self.redis.get(self._opened_key))
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
        return self._state_at(self._opened_at(), _now(self._clock))

    def failure_count(self) -> int:
        """Failures counted in the current window (closed state)."""
        raw = _to_str(self.redis.get(self._failures_key(_now(self._clock))))
        return int(raw) if raw else 0

    def _failures_key(self, now: float) -> str:
        return f"{self._failures_prefix}:{int(now // self.window_seconds)}"

    # -- deciding --------------------------------------------------------

    def allow(self) -> bool:
        """May a call go out now? Half-open: True for exactly one caller (the trial)."""
        state = self.state()
        if state == CLOSED:
            return True
        if state == OPEN:
            return False
        # Half-open: one trial token, shared by every process.
        return bool(self.redis.set(self._trial_key, "1", nx=True, ex=self.trial_timeout_seconds))

    # -- reporting -------------------------------------------------------

    def record_success(self) -> None:
        """The call worked: close the breaker and forget counted failures."""
        now = _now(self._clock)
        self.redis.delete(
            self._opened_key,
            self._trial_key,
            self._failures_key(now),
            self._failures_key(now - self.window_seconds),
        )

    def record_failure(self) -> None:
        """The call failed (timeout, outage): count it, maybe open or re-open."""
        now = _now(self._clock)
        state = self._state_at(self._opened_at(), now)
        if state == HALF_OPEN:
            # The trial failed: another full cooldown, then another single trial.
            pipe = self.redis.pipeline(transaction=True)
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
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.window_seconds * 2)
        pipe.get(self._failures_key(now - self.window_seconds))
        count, _, previous = pipe.execute()
        if int(count) + int(previous or 0) >= self.failure_threshold:
            # NX: when several processes cross the threshold together, the first opening stands.
            if self.redis.set(self._opened_key, repr(now), nx=True):
                self.redis.delete(self._trial_key, key, self._failures_key(now - self.window_seconds))

    def reset(self) -> None:
        """Forget everything (tests, admin action)."""
        self.record_success()


class DailyCap:
    """At most ``limit`` acquisitions per UTC day, shared by every process."""

    def __init__(self, redis, name: str, limit: int, *, clock: Clock | None = None) -> None:
        self.redis = redis
        self.name = name
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
        key = self._key()
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 2 * 86400)
        count, _ = pipe.execute()
        if int(count) > self.limit:
            # Each refused caller takes back only its own increment, so exactly
            # `limit` callers ever see a count <= limit.
            self.redis.decr(key)
            return False
        return True

    def used(self) -> int:
        """Calls counted today."""
        raw = _to_str(self.redis.get(self._key()))
        return int(raw) if raw else 0

    def remaining(self) -> int:
        return max(0, self.limit - self.used())
