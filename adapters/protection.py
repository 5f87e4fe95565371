"""The service's protections, built from settings: rate limits, the guarded LLM (concurrency
cap and circuit breaker) and the store that survives a Redis outage."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.metrics import Metrics
from adapters.settings import Settings
from core.breaker import CircuitBreaker
from core.limits import LocalRateLimiter, RateLimiter
from core.llm.base import LLM
from core.llm.guard import GuardedLLM
from core.memory import RedisStore
from core.memory.base import Store
from core.memory.redis_limits import RedisRateLimiter
from core.memory.resilient import ResilientStore

__all__ = [
    "BUSY_POOL_WAIT",
    "REDIS_CONNECT_TIMEOUT",
    "REDIS_TIMEOUT",
    "guard_llm",
    "open_limiter",
    "redis_client",
    "shield_store",
    "watch",
]

# A Redis host that vanishes (no refusal, just silence) must not hold a turn for the minutes TCP
# takes to notice: after these seconds the store counts as down and the service goes on without it.
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_TIMEOUT = 5.0
# When every pooled connection is busy, a command waits this long for one before it fails.
REDIS_POOL_WAIT = 5.0
# The same for the store and the job queue: a pool kept busy is load, not an outage. Taken for
# one, the store answered from its local buffer, where a Kakao answer kept in Redis for the
# user's next message was not found (the three-door soak showed it after the next one's).
BUSY_POOL_WAIT = 30.0
REDIS_HEALTH_CHECK = 2.0


def redis_client(url: str, *, pool: int, wait: float = REDIS_POOL_WAIT) -> Redis:
    """A client for the store, the rate limits or the job queue (no blocking reads past 5 s).

    At most ``pool`` connections: a burst (every waiting job checking its turn the moment Redis
    is back from a restart) waits for a free connection instead of failing with redis-py's
    default pool's "Too many connections", which held conversations back for their whole order
    wait in the soak run.
    """
    connections = BlockingConnectionPool.from_url(
        url,
        max_connections=pool,
        timeout=wait,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        # A connection idle this long is checked (PING) before use: after a Redis restart the
        # pooled connections are dead, and each would otherwise fail one command first.
        health_check_interval=REDIS_HEALTH_CHECK,
        # One used more recently is tried again once, on a new connection, when the server
        # closed it (not on a timeout: the command may have run). The job queue's put carries a
        # token so that a put run twice records the job once (core/memory/redis_jobs.py).
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    # The client owns the pool it is given: closing the client closes its connections.
    return Redis.from_pool(connections)


def open_limiter(settings: Settings) -> RateLimiter:
    """Buckets in Redis (shared by every process) when REDIS_URL is set, else in this process."""
    if settings.redis_url:
        client = redis_client(settings.redis_url, pool=settings.redis_pool)
        return RedisRateLimiter(client=client, rates=settings.rates, prefix=settings.redis_prefix)
    return LocalRateLimiter(settings.rates)


def guard_llm(llm: LLM | None, settings: Settings) -> GuardedLLM | None:
    """``llm`` behind the concurrency cap and the circuit breaker (None stays None)."""
    if llm is None:
        return None
    breaker = CircuitBreaker(threshold=settings.llm_breaker_threshold, cooldown=settings.llm_breaker_cooldown)
    return GuardedLLM(llm, breaker=breaker, concurrency=settings.llm_concurrency)


def shield_store(store: Store, kind: str) -> Store:
    """A shared store behind the outage fallback; the embedded file needs none (it is local)."""
    if isinstance(store, RedisStore):
        return ResilientStore(inner=store, kind=kind)
    return store


def watch(metrics: Metrics, *, store: Store, llm: GuardedLLM | None) -> None:
    """Report the breaker's state and the store's outage as gauges."""
    if llm is not None:
        breaker = llm.breaker
        metrics.track_breaker(lambda: breaker.state.value)
    if isinstance(store, ResilientStore):
        shielded = store
        metrics.track_store(lambda: shielded.degraded)
