"""What only the Redis store promises: its documented key layout, TTLs and a cross-process lock."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

import core.memory.redis as redis_module
from core.errors import ConfigError, StoreError
from core.memory import RedisStore
from core.types import ConversationKey, Summary, Turn, UserKey

# A Teams id, with the ':' and ';' that the layout must survive.
KEY = ConversationKey(platform="teams", tenant="tenant-1", conversation="19:abc@thread.tacv2;messageid=1")
USER = "29:1xyz"
PERSON = UserKey(platform="teams", tenant="tenant-1", user_id=USER)


def said(text: str) -> Turn:
    return Turn(role="user", text=text, at=1.0, user_id=USER, user_name="이영희")


async def keys(client: Redis, prefix: str) -> set[str]:
    return {key.decode() async for key in client.scan_iter(match=f"{prefix}:*")}


async def test_keys_follow_the_documented_layout(redis_store: RedisStore, redis_client: Redis) -> None:
    p, conv = redis_store.prefix, KEY.id
    await redis_store.append(
        KEY, [said("안녕하세요"), Turn(role="assistant", text="네", at=2.0)], retention=60
    )
    [first, answer] = await redis_store.turns_after(KEY, seq=0)
    saved = await redis_store.save_summary(
        KEY, Summary(text="- 인사함", upto=first.seq), replaces=Summary(), folded=[first]
    )
    assert saved
    await redis_store.remember(PERSON, "저는 재무팀이에요", limit=5, retention=60)
    await redis_store.put_pending(KEY, "보류", ttl=60)
    await redis_store.claim("teams:default:tenant-1:act-1", ttl=60)
    async with redis_store.lock(KEY):
        held = await keys(redis_client, p)
    digest = hashlib.sha256(b"teams:default:tenant-1:act-1").hexdigest()[:40]
    assert held == {
        f"{p}:conv:{{{conv}}}:turns",
        f"{p}:conv:{{{conv}}}:seq",
        f"{p}:conv:{{{conv}}}:summary",
        f"{p}:conv:{{{conv}}}:pending",
        f"{p}:conv:{{{conv}}}:lock",
        f"{p}:facts:teams:default:tenant-1:29%3A1xyz",
        f"{p}:user:teams:tenant-1:29%3A1xyz",
        f"{p}:seen:{{{p}:jobs}}:{digest}",
    }
    assert f"{p}:conv:{{{conv}}}:lock" not in await keys(redis_client, p)
    items = await redis_client.lrange(f"{p}:conv:{{{conv}}}:turns", 0, -1)
    assert [json.loads(item)["seq"] for item in items] == [1, 2] == [first.seq, answer.seq]
    assert json.loads(items[0])["text"] == "안녕하세요"
    assert "안녕하세요".encode() in items[0]  # readable JSON, not \\u escapes
    assert await redis_client.get(f"{p}:conv:{{{conv}}}:seq") == b"2"
    assert json.loads(await redis_client.get(f"{p}:conv:{{{conv}}}:summary") or "") == {
        "text": "- 인사함",
        "upto": 1,
    }
    [fact] = await redis_client.lrange(f"{p}:facts:teams:default:tenant-1:29%3A1xyz", 0, -1)
    assert json.loads(fact)["text"] == "저는 재무팀이에요"
    assert await redis_client.smembers(f"{p}:user:teams:tenant-1:29%3A1xyz") == {
        conv.encode(),
        b"#facts:default",
    }


async def test_the_layout_is_documented_in_the_module_docstring() -> None:
    layout = redis_module.__doc__ or ""
    for part in (":turns", ":seq", ":summary", ":pending", ":lock", ":facts:<user>", ":user:", ":seen:"):
        assert part in layout


async def test_one_conversation_lives_in_one_cluster_slot(redis_store: RedisStore) -> None:
    p, conv = redis_store.prefix, KEY.id
    parts = ("turns", "seq", "summary", "pending", "lock")
    slots = {key_slot(f"{p}:conv:{{{conv}}}:{part}".encode()) for part in parts}
    assert slots == {key_slot(conv.encode())}


async def test_every_key_carries_its_ttl(redis_store: RedisStore, redis_client: Redis) -> None:
    p, conv = redis_store.prefix, KEY.id
    await redis_store.remember(PERSON, "저는 재무팀이에요", limit=5, retention=60)
    await redis_store.append(KEY, [said("a")], retention=3600)
    [turn] = await redis_store.turns_after(KEY, seq=0)
    assert await redis_store.save_summary(KEY, Summary("요약", turn.seq), replaces=Summary(), folded=[turn])
    await redis_store.put_pending(KEY, "b", ttl=90)
    await redis_store.claim("teams:default:tenant-1:act-2", ttl=600)
    for part in ("turns", "seq", "summary"):
        assert 3590 <= await redis_client.ttl(f"{p}:conv:{{{conv}}}:{part}") <= 3600
    # The user wrote to the bot: their facts now live as long as the conversation.
    assert 3590 <= await redis_client.ttl(f"{p}:facts:teams:default:tenant-1:29%3A1xyz") <= 3600
    assert 3590 <= await redis_client.ttl(f"{p}:user:teams:tenant-1:29%3A1xyz") <= 3600
    assert 80 <= await redis_client.ttl(f"{p}:conv:{{{conv}}}:pending") <= 90
    digest = hashlib.sha256(b"teams:default:tenant-1:act-2").hexdigest()[:40]
    assert 590 <= await redis_client.ttl(f"{p}:seen:{{{p}:jobs}}:{digest}") <= 600
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
            await store.summary(KEY)
        with pytest.raises(StoreError):
            await store.remember(PERSON, "사실", limit=5, retention=60)
        with pytest.raises(StoreError):
            await store.export_user(platform="teams", tenant="tenant-1", user_id=USER)
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
