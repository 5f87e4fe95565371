"""Rate-limit buckets in Redis, shared by every process (keys: see ``core/memory/redis.py``).

One Lua script refills and takes in a single step, with Redis's own clock, so processes on
machines whose clocks disagree still share one bucket fairly. When Redis cannot be reached the
limiter falls back to buckets in this process (limits then hold per process) and tries Redis
again after a pause that doubles while it keeps failing; it logs once when it falls back and once
when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import ConfigError
from core.limits import LocalRateLimiter, Rate
from core.memory.redis_codec import Keys

__all__ = ["RETRY_AFTER_FAILURE", "RETRY_LONGEST", "TAKE_TIMEOUT", "RedisRateLimiter"]

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 5.0  # seconds of local limits before Redis is tried again; doubles up to a minute
RETRY_LONGEST = 60.0
TAKE_TIMEOUT = 1.0  # a frozen Redis must not hold a user's message longer than this

# KEYS[1] the bucket, a string "<tokens> <ms>"; ARGV[1] capacity, ARGV[2] ms to fill it up.
# Returns 0 when a token was taken, else the milliseconds until one is there.
_TAKE = """
local capacity = tonumber(ARGV[1])
local fill_ms = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tokens, at = capacity, now
local state = redis.call('GET', KEYS[1])
if state then
  local t, a = string.match(state, '^(%S+) (%S+)$')
  tokens, at = tonumber(t) or capacity, tonumber(a) or now
end
local per_ms = capacity / fill_ms
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local wait = 0
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  wait = math.max(1, math.ceil((1 - tokens) / per_ms))
end
redis.call('SET', KEYS[1], string.format('%.6f %d', tokens, now), 'PX', math.ceil(fill_ms))
return wait
"""


class RedisRateLimiter:
    """Token buckets in Redis under ``<prefix>:rate:``; owns its client and closes it.

    Args:
        client: the Redis client.
        rates: the rate of each scope ("user", "tenant"); scopes without one are unlimited.
        prefix: the store's key prefix.
        clock: monotonic time, for the pause after a failure.
    """

    def __init__(
        self,
        *,
        client: Redis,
        rates: Mapping[str, Rate],
        prefix: str = "dari",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigError("the Redis prefix must be non-empty, without braces", field="prefix")
        self._client = client
        self._rates = dict(rates)
        self._keys = Keys(prefix)
        self._clock = clock
        self._local = LocalRateLimiter(rates, clock=clock)
        self._retry_at: float | None = None  # set while Redis is failing
        self._pause = RETRY_AFTER_FAILURE
        self._take = client.register_script(_TAKE)

    @classmethod
    def from_url(cls, url: str, *, rates: Mapping[str, Rate], prefix: str = "dari") -> RedisRateLimiter:
        return cls(client=Redis.from_url(url), rates=rates, prefix=prefix)

    @property
    def degraded(self) -> bool:
        """True while limits are kept in this process because Redis failed."""
        return self._retry_at is not None

    async def take(self, scope: str, key: str) -> float | None:
        rate = self._rates.get(scope)
        if rate is None:
            return None
        if self._retry_at is not None and self._clock() < self._retry_at:
            return self._local.take_now(scope, key)
        try:
            async with asyncio.timeout(TAKE_TIMEOUT):
                wait_ms = await self._take(
                    keys=[self._keys.rate(scope, key)], args=[rate.capacity, round(rate.seconds * 1000, 3)]
                )
        except (RedisError, TimeoutError) as error:
            if self._retry_at is None:
                log.warning("rate limits kept in this process: Redis failed (%s)", type(error).__name__)
            else:
                self._pause = min(self._pause * 2, RETRY_LONGEST)
            self._retry_at = self._clock() + self._pause
            return self._local.take_now(scope, key)
        if self._retry_at is not None:
            log.info("rate limits shared through Redis again")
            self._retry_at, self._pause = None, RETRY_AFTER_FAILURE
        return None if not wait_ms else int(wait_ms) / 1000

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except RedisError as error:
            log.debug("closing the rate-limit client failed: %s", error)
