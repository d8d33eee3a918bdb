"""Rate limits on any key: an API key, an upload link, a client address…

Fixed windows counted in Redis, every window of a limiter checked and counted
in ONE Lua script (atomic across every web worker): a request is allowed only
when no window is full, and only an allowed request is counted. Usage::

    limiter = RateLimiter("api", [Window(100, 1), Window(6000, 60)])
    decision = limiter.hit("apikey:kbt_ab12")
    if not decision.allowed:
        ...  # 429, Retry-After: decision.retry_after
    response.headers.update(decision.headers())

The limiter knows nothing about who the key belongs to; callers pick a key
namespace (``apikey:``, ``upload-link:``, ``ip:``).

Without Redis (``REDIS_URL`` unset: ``make run``), or while it cannot be
reached, the same windows are counted in this process's memory: a limit then
holds per process (``processes × limit`` overall), never a 500 and never an
unlimited API. The fallback follows ``kobatela.core.circuit_breaker``: one
timeout per outage (``REDIS_OUTAGES``), logged and counted in
``kobatela_redis_fallbacks_total{name="ratelimit:<name>"}``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from kobatela.core.circuit_breaker import REDIS_FALLBACKS, REDIS_OUTAGES, REDIS_UNAVAILABLE, redis_server_name

# Any Redis failure (unreachable, or refusing: OOM, MISCONF, read-only replica)
# falls back: a rate limit must never turn a request into a 500.
_REDIS_FAILURES = (*REDIS_UNAVAILABLE, RedisError)

logger = logging.getLogger(__name__)

KEY_PREFIX = "kobatela:rl"

# KEYS: one counter key per window; ARGV: limit, ttl per window (pairs).
# Returns {allowed (0/1), count_1, count_2, …} — the counts after this request.
_SCRIPT = """
local n = #KEYS
local counts = {}
for i = 1, n do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  if counts[i] >= tonumber(ARGV[2 * i - 1]) then
    local out = {0}
    for j = 1, n do out[j + 1] = tonumber(redis.call('GET', KEYS[j]) or '0') end
    return out
  end
end
local out = {1}
for i = 1, n do
  out[i + 1] = redis.call('INCR', KEYS[i])
  if out[i + 1] == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 * i])) end
end
return out
"""


@dataclass(frozen=True)
class Window:
    limit: int  # requests allowed ...
    seconds: int  # ... per this many seconds

    def number(self, now: float) -> int:
        return int(now // self.seconds)

    def reset_after(self, now: float) -> float:
        return (self.number(now) + 1) * self.seconds - now


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # the binding window's limit
    remaining: int
    reset: int  # seconds until the binding window resets
    retry_after: int  # seconds to wait when refused (0 when allowed)

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` (IETF draft), and ``Retry-After`` when refused."""
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                   "RateLimit-Reset": str(self.reset)}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class _LocalCounters:
    """The script's semantics in this process's memory, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key → (count, expiry on time.time())

    def run(self, keys: Sequence[str], windows: Sequence[Window], now: float) -> list[int]:
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            counts = [self._live(key, now) for key in keys]
            if any(count >= window.limit for count, window in zip(counts, windows, strict=True)):
                return [0, *counts]
            for key, count, window in zip(keys, counts, windows, strict=True):
                self._counts[key] = (count + 1, now + window.reset_after(now))
            return [1, *(count + 1 for count in counts)]

    def _live(self, key: str, now: float) -> int:
        count, expiry = self._counts.get(key, (0, 0.0))
        return count if expiry > now else 0

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


LOCAL = _LocalCounters()


class RateLimiter:
    """Windows of one named limit. ``redis`` is a redis-py client, or ``None``
    for process-local counting only."""

    def __init__(self, name: str, windows: Sequence[Window], *, redis=None, server: str | None = None) -> None:
        if not windows or any(w.limit < 1 or w.seconds < 1 for w in windows):
            raise ValueError("at least one window, each with a positive limit and period")
        self.name = name
        self.windows = tuple(windows)
        self.redis = redis
        self._server = server or redis_server_name(redis)
        self._script = redis.register_script(_SCRIPT) if redis is not None else None

    def _keys(self, key: str, now: float) -> list[str]:
        return [f"{KEY_PREFIX}:{self.name}:{key}:{w.seconds}:{w.number(now)}" for w in self.windows]

    def _counts(self, keys: list[str], now: float) -> list[int]:
        if self._script is not None and not REDIS_OUTAGES.is_down(self._server):
            argv = [value for w in self.windows for value in (w.limit, w.seconds + 1)]
            try:
                return [int(v) for v in self._script(keys=keys, args=argv)]
            except _REDIS_FAILURES as exc:
                REDIS_OUTAGES.failed(self._server)
                logger.warning("redis unreachable: rate limits counted in this process",
                               extra={"limiter": self.name, "error": f"{type(exc).__name__}: {exc}"[:200]})
        if self._script is not None:
            REDIS_FALLBACKS.labels(name=f"ratelimit:{self.name}").inc()
        return LOCAL.run(keys, self.windows, now)

    def hit(self, key: str, *, now: float | None = None) -> Decision:
        """Count one request for ``key`` (unless a window is full) and say whether it may go on."""
        now = time.time() if now is None else now
        allowed, *counts = self._counts(self._keys(key, now), now)
        # The binding window: the fewest requests left (the full one when refused).
        remaining, window = min(((w.limit - c, w) for c, w in zip(counts, self.windows, strict=True)),
                                key=lambda pair: (pair[0], -pair[1].seconds))
        reset = max(1, math.ceil(window.reset_after(now)))
        if allowed:
            return Decision(True, window.limit, max(remaining, 0), reset, 0)
        full = max((w for c, w in zip(counts, self.windows, strict=True) if c >= w.limit),
                   key=lambda w: w.reset_after(now))
        wait = max(1, math.ceil(full.reset_after(now)))
        return Decision(False, full.limit, 0, wait, wait)
