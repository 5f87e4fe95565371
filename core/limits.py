"""Rate limits: token buckets per user and per tenant, so one person or one company cannot
spend everyone's LLM budget.

A bucket holds ``Rate.capacity`` tokens and refills continuously, the whole bucket in
``Rate.seconds``: "20/60" lets a user send 20 messages at once, then one every 3 seconds.
``LocalRateLimiter`` keeps the buckets in this process (the embedded store, one process);
``core.memory.redis_limits.RedisRateLimiter`` keeps them in Redis, shared by every process.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from core.types import Inbound

__all__ = ["LocalRateLimiter", "Rate", "RateLimiter", "Refusal", "limit_key", "refusal", "wait_seconds"]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_OFF = {"off", "none", "0"}
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Rate:
    """A bucket's size and how long it takes to fill up again.

    Attributes:
        capacity: messages allowed at once (the burst).
        seconds: time for an empty bucket to fill completely.
    """

    capacity: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.capacity / self.seconds

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"20/60"`` (20 per 60 s), ``"20/1m"``, ``"3000/1h"``; ``"off"`` (or ``"0"``) is None.

        Raises:
            ValueError: the text is not in that form.
        """
        if text.strip().lower() in _OFF:
            return None
        match = _RATE.match(text.lower())
        if match is None:
            raise ValueError(f"{text!r} is not a rate: write messages/seconds, e.g. 20/60, 20/1m or off")
        capacity, seconds = int(match[1]), float(match[2]) * _UNITS[match[3]]
        if capacity < 1 or seconds <= 0:
            raise ValueError(f"{text!r}: both the count and the period must be positive (or write off)")
        return cls(capacity=capacity, seconds=seconds)

    def __str__(self) -> str:
        return f"{self.capacity}/{self.seconds:g}s"


def limit_key(*parts: str) -> str:
    """One bucket's key from id parts, unambiguous whatever the ids contain."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


class RateLimiter(Protocol):
    """Takes tokens from named buckets. Implementations never raise: a limiter that cannot
    reach its backing store falls back to something local rather than refusing everyone."""

    async def take(self, scope: str, key: str) -> float | None:
        """Take one token from ``key``'s bucket in ``scope``.

        Returns:
            None when allowed (also for a scope without a rate), else the seconds until a
            token will be there.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class LocalRateLimiter:
    """Buckets in a dict; for one process.

    Buckets that have filled up again hold no information and are dropped, so memory follows
    the number of people active within one refill period.
    """

    def __init__(self, rates: Mapping[str, Rate], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rates = dict(rates)
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._swept = clock()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, scope: str, key: str) -> float | None:
        return self.take_now(scope, key)

    def take_now(self, scope: str, key: str) -> float | None:
        """``take`` without awaiting (for callers that fall back to it synchronously)."""
        rate = self._rates.get(scope)
        if rate is None:
            return None
        now = self._clock()
        self._sweep(now)
        bucket = self._buckets.get((scope, key))
        if bucket is None:
            bucket = self._buckets[(scope, key)] = _Bucket(tokens=float(rate.capacity), at=now)
        bucket.tokens = min(rate.capacity, bucket.tokens + max(0.0, now - bucket.at) * rate.per_second)
        bucket.at = now
        if bucket.tokens >= 1 - _EPSILON:  # a bucket refilled exactly on time is not refused
            bucket.tokens = max(0.0, bucket.tokens - 1)
            return None
        return (1 - bucket.tokens) / rate.per_second

    def _sweep(self, now: float) -> None:
        longest = max((r.seconds for r in self._rates.values()), default=0.0)
        if now - self._swept < longest:
            return
        self._swept = now
        for found, bucket in list(self._buckets.items()):
            if now - bucket.at >= self._rates[found[0]].seconds:
                del self._buckets[found]

    async def close(self) -> None:
        return None


def wait_seconds(wait: float) -> int:
    """Whole seconds to tell a user: never 0, never less than the real wait."""
    return max(1, math.ceil(wait - 1e-9))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message is not answered now.

    Attributes:
        scope: the bucket that is empty.
        seconds: whole seconds until the user may send again (at least 1).
    """

    scope: Literal["user", "tenant"]
    seconds: int

    @property
    def message(self) -> Literal["rate_limited_user", "rate_limited_tenant"]:
        """The id of the sentence that tells the user (``core.messages``)."""
        return "rate_limited_user" if self.scope == "user" else "rate_limited_tenant"


async def refusal(limiter: RateLimiter, inbound: Inbound) -> Refusal | None:
    """Take a token for ``inbound`` from its user's and its tenant's buckets; None when allowed.

    The user's bucket is asked first: messages refused there do not spend the tenant's tokens,
    so one person sending too fast cannot use up their company's budget.
    """
    key = inbound.key
    wait = await limiter.take("user", limit_key(key.platform, key.tenant, inbound.user_id))
    if wait is not None:
        return Refusal(scope="user", seconds=wait_seconds(wait))
    wait = await limiter.take("tenant", limit_key(key.platform, key.tenant))
    return None if wait is None else Refusal(scope="tenant", seconds=wait_seconds(wait))
