"""What only the Redis store promises: its documented key layout, TTLs and a cross-process lock."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from core.errors import ConfigError, StoreError
from core.memory import RedisStore
from core.types import ConversationKey, Turn

# A Teams id, with the ':' and ';' that the layout must survive.
KEY = ConversationKey(platform="teams", tenant="tenant-1", conversation="19:abc@thread.tacv2;messageid=1")
USER = "29:1xyz"


def said(text: str) -> Turn:
    return Turn(role="user", text=text, at=1.0, user_id=USER, user_name="이영희")


async def keys(client: Redis, prefix: str) -> set[str]:
    return {key.decode() async for key in client.scan_iter(match=f"{prefix}:*")}


async def test_keys_follow_the_documented_layout(redis_store: RedisStore, redis_client: Redis) -> None:
    p, conv = redis_store.prefix, KEY.id
    await redis_store.append(
        KEY, [said("안녕하세요"), Turn(role="assistant", text="네", at=2.0)], retention=60
    )
    await redis_store.put_pending(KEY, "보류", ttl=60)
    await redis_store.claim("teams:default:tenant-1:act-1", ttl=60)
    async with redis_store.lock(KEY):
        held = await keys(redis_client, p)
    assert held == {
        f"{p}:conv:{{{conv}}}:turns",
        f"{p}:conv:{{{conv}}}:pending",
        f"{p}:conv:{{{conv}}}:lock",
        f"{p}:user:teams:tenant-1:29%3A1xyz",
        f"{p}:seen:teams:default:tenant-1:act-1",
    }
    assert f"{p}:conv:{{{conv}}}:lock" not in await keys(redis_client, p)
    items = await redis_client.lrange(f"{p}:conv:{{{conv}}}:turns", 0, -1)
    first = json.loads(items[0])
    assert first["text"] == "안녕하세요"
    assert "안녕하세요".encode() in items[0]  # readable JSON, not \\u escapes
    assert await redis_client.smembers(f"{p}:user:teams:tenant-1:29%3A1xyz") == {conv.encode()}


async def test_one_conversation_lives_in_one_cluster_slot(redis_store: RedisStore) -> None:
    p, conv = redis_store.prefix, KEY.id
    slots = {key_slot(f"{p}:conv:{{{conv}}}:{part}".encode()) for part in ("turns", "pending", "lock")}
    assert slots == {key_slot(conv.encode())}


async def test_every_key_carries_its_ttl(redis_store: RedisStore, redis_client: Redis) -> None:
    p, conv = redis_store.prefix, KEY.id
    await redis_store.append(KEY, [said("a")], retention=3600)
    await redis_store.put_pending(KEY, "b", ttl=90)
    await redis_store.claim("teams:default:tenant-1:act-2", ttl=600)
    assert 3590 <= await redis_client.ttl(f"{p}:conv:{{{conv}}}:turns") <= 3600
    assert 3590 <= await redis_client.ttl(f"{p}:user:teams:tenant-1:29%3A1xyz") <= 3600
    assert 80 <= await redis_client.ttl(f"{p}:conv:{{{conv}}}:pending") <= 90
    assert 590 <= await redis_client.ttl(f"{p}:seen:teams:default:tenant-1:act-2") <= 600
    async with redis_store.lock(KEY):
        lock_ttl = await redis_client.ttl(f"{p}:conv:{{{conv}}}:lock")
    assert redis_store.lock_timeout - 10 <= lock_ttl <= redis_store.lock_timeout


async def test_user_index_lives_as_long_as_the_longest_conversation(
    redis_store: RedisStore, redis_client: Redis
) -> None:
    index = f"{redis_store.prefix}:user:teams:tenant-1:29%3A1xyz"
    await redis_store.append(KEY, [said("a")], retention=3600)
    await redis_store.append(
        ConversationKey(platform="teams", tenant="tenant-1", conversation="c2"), [said("b")], retention=60
    )
    assert 3590 <= await redis_client.ttl(index) <= 3600
    await redis_store.append(
        ConversationKey(platform="teams", tenant="tenant-1", conversation="c3"), [said("c")], retention=7200
    )
    assert 7190 <= await redis_client.ttl(index) <= 7200


async def test_the_lock_holds_across_processes(
    redis_store: RedisStore, redis_url: str, redis_client: Redis
) -> None:
    name = f"dari-test-{uuid.uuid4().hex[:8]}"
    other = RedisStore(client=Redis.from_url(redis_url, client_name=name), prefix=redis_store.prefix)
    lock_key = f"{redis_store.prefix}:conv:{{{KEY.id}}}:lock"
    entered = asyncio.Event()

    async def second_process() -> None:
        async with other.lock(KEY):
            entered.set()

    try:
        async with redis_store.lock(KEY):
            first_token = await redis_client.get(lock_key)
            task = asyncio.create_task(second_process())
            # Poll (bounded) until the other client has tried its SET NX on the lock ...
            for _ in range(200):
                if any(c["name"] == name and c["cmd"] == "set" for c in await redis_client.client_list()):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the second store never tried to take the lock")
            # ... and failed: the lock still holds the first store's token.
            assert await redis_client.get(lock_key) == first_token
            assert not entered.is_set()
        await asyncio.wait_for(entered.wait(), timeout=5)
        await task
    finally:
        await other.close()


async def test_an_unreachable_server_raises_store_error() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StoreError):
            await store.ping()
        with pytest.raises(StoreError):
            await store.history(KEY, limit=5)
        with pytest.raises(StoreError):
            await store.append(KEY, [said("a")], retention=60)
        with pytest.raises(StoreError):
            await store.claim("x", ttl=60)
        with pytest.raises(StoreError):
            await store.forget_user(platform="teams", tenant="tenant-1", user_id=USER)
        with pytest.raises(StoreError):
            async with store.lock(KEY):
                pass
    finally:
        await store.close()


@pytest.mark.parametrize("prefix", ["", "da{ri}"])
async def test_a_prefix_that_would_break_the_layout_is_refused(prefix: str) -> None:
    client = Redis()  # never connects
    try:
        with pytest.raises(ConfigError):
            RedisStore(client=client, prefix=prefix)
    finally:
        await client.aclose()
