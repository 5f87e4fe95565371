"""Rate limits in Redis: one bucket shared by every process, Redis's clock, local fallback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.limits import Rate, limit_key
from core.memory.redis_limits import RedisRateLimiter
from tests.support.redis import FakeClock, delete_prefix
from tests.support.redis_server import RedisServer

RATES = {"user": Rate(capacity=3, seconds=60.0), "tenant": Rate(capacity=100, seconds=60.0)}
ALICE = limit_key("slack", "T1", "alice-U123")


@pytest.fixture
async def limiters(
    redis_url: str, redis_client: Redis, redis_prefix: str
) -> AsyncIterator[list[RedisRateLimiter]]:
    # Two limiters with their own connections stand in for two processes.
    made = [RedisRateLimiter.from_url(redis_url, rates=RATES, prefix=redis_prefix) for _ in range(2)]
    yield made
    for limiter in made:
        await limiter.close()
    await delete_prefix(redis_client, redis_prefix)


async def test_processes_share_one_bucket(limiters: list[RedisRateLimiter]) -> None:
    first, second = limiters
    taken = [
        await first.take("user", ALICE),
        await second.take("user", ALICE),
        await first.take("user", ALICE),
    ]
    assert taken == [None, None, None]
    wait = await second.take("user", ALICE)
    assert wait is not None and 19.0 < wait <= 20.0  # one token every 20 s
    assert await first.take("user", limit_key("slack", "T1", "bob")) is None


async def test_concurrent_takes_never_hand_out_more_than_the_bucket_holds(
    limiters: list[RedisRateLimiter],
) -> None:
    results = await asyncio.gather(*(limiters[i % 2].take("user", ALICE) for i in range(20)))
    assert sum(r is None for r in results) == 3


async def test_the_bucket_refills_with_time_and_expires_when_full(
    limiters: list[RedisRateLimiter], redis_client: Redis, redis_prefix: str
) -> None:
    limiter = limiters[0]
    for _ in range(3):
        await limiter.take("user", ALICE)
    assert await limiter.take("user", ALICE) is not None
    (key,) = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:rate:*")]
    assert 59_000 < await redis_client.pttl(key) <= 60_000
    # Redis's clock cannot be moved: move the bucket's last update 40 s back instead.
    stored = await redis_client.get(key)
    assert isinstance(stored, bytes)
    tokens, at = stored.decode().split()
    assert float(tokens) < 0.01
    await redis_client.set(key, f"{tokens} {int(at) - 40_000}", px=60_000)
    assert [await limiter.take("user", ALICE) for _ in range(3)][:2] == [None, None]  # 2 tokens back
    assert await limiter.take("user", ALICE) is not None


async def test_keys_name_nobody(
    limiters: list[RedisRateLimiter], redis_client: Redis, redis_prefix: str
) -> None:
    await limiters[0].take("user", ALICE)
    await limiters[0].take("tenant", limit_key("slack", "T1"))
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}:*")]
    assert len(keys) == 2 and all(k.startswith(f"{redis_prefix}:rate:") for k in keys)
    assert not any("alice" in k or "T1" in k for k in keys)


async def test_without_redis_limits_hold_in_the_process_and_it_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(start=0.0)
    async with RedisServer() as server:
        limiter = RedisRateLimiter(client=Redis.from_url(server.url), rates=RATES, clock=clock)
        try:
            assert await limiter.take("user", ALICE) is None
            await server.stop()
            with caplog.at_level(logging.INFO, logger="core.memory.redis_limits"):
                results = [await limiter.take("user", ALICE) for _ in range(5)]
                assert limiter.degraded
                assert results[:3] == [None, None, None] and None not in results[3:]  # local bucket
                await server.start()
                clock.advance(5)  # the pause before Redis is tried again
                assert await limiter.take("user", ALICE) is None  # Redis again: its own bucket
                assert not limiter.degraded
            messages = [r.getMessage() for r in caplog.records]
            assert messages == [
                "rate limits kept in this process: Redis failed (ConnectionError)",
                "rate limits shared through Redis again",
            ]
        finally:
            await limiter.close()


async def test_a_frozen_redis_holds_a_message_back_for_a_second_at_most() -> None:
    clock = FakeClock(start=0.0)
    async with RedisServer() as server:
        # No socket timeout on this client: only the limiter's own bound applies.
        limiter = RedisRateLimiter(client=Redis.from_url(server.url), rates=RATES, clock=clock)
        try:
            assert await limiter.take("user", ALICE) is None
            server.pause()
            try:
                assert await limiter.take("user", ALICE) is None  # from the local bucket
                assert limiter.degraded
                clock.advance(5)
                await limiter.take("user", ALICE)  # tried again, failed again: the pause doubles
            finally:
                server.resume()
            clock.advance(5)
            await limiter.take("user", ALICE)
            assert limiter.degraded  # Redis is back, but it is not time to try it yet
            clock.advance(5)
            await limiter.take("user", ALICE)
            assert not limiter.degraded
        finally:
            await limiter.close()
