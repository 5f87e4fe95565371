"""The conversation lock lives as long as its holder: renewed while held, short-lived once not."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from core.memory import RedisStore
from core.types import ConversationKey

KEY = ConversationKey("slack", "T1", "C1", thread="1700000000.000100")


async def test_a_lock_held_past_its_timeout_is_renewed_and_then_released(
    redis_url: str, redis_prefix: str, redis_client: Redis
) -> None:
    store = RedisStore.from_url(redis_url, prefix=redis_prefix, lock_timeout=0.3)
    lock = f"{redis_prefix}:conv:{{{KEY.id}}}:lock"
    try:
        async with store.lock(KEY):
            owner = await redis_client.get(lock)
            for _ in range(20):  # a second: three times the lock's timeout
                await asyncio.sleep(0.05)  # time passing is the point here, not a wait for an event
                assert await redis_client.get(lock) == owner  # renewed, never lapsed
        assert await redis_client.exists(lock) == 0
    finally:
        await store.close()
