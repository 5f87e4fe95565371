"""The store that outlives Redis: a private redis-server is killed, frozen and started again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core.engine import Engine
from core.errors import ErasureIncomplete, StoreError
from core.memory import RedisStore
from core.memory.resilient import ResilientStore
from core.persona import load_personas
from core.types import ChatMessage, ConversationKey, Inbound, Summary, Turn, UserKey
from tests.support.fakes import InMemoryStore, ScriptedLLM
from tests.support.redis_server import RedisServer

BOTS = Path(__file__).resolve().parents[3] / "bots"
KEY = ConversationKey(platform="kakao", tenant="bot1", conversation="user-a")


@pytest.fixture
async def server() -> AsyncIterator[RedisServer]:
    async with RedisServer() as running:
        yield running


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[ResilientStore]:
    # A short read timeout, so that a frozen server counts as down quickly in tests.
    client = Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    shielded = ResilientStore(inner=RedisStore(client=client), kind="redis", retry_min=0.01, retry_max=0.05)
    yield shielded
    await shielded.close()


async def recovered(store: ResilientStore) -> None:
    async with asyncio.timeout(10):
        await store.wait_healthy()
        await store.wait_written_back()


def echo(messages: Sequence[ChatMessage]) -> str:
    # The answer names every earlier user message the prompt carried, so tests see the history.
    earlier = [m.content for m in messages[1:-1] if m.role == "user"]
    return f"답: {messages[-1].content} (기억: {', '.join(earlier) or '없음'})"


def said(text: str, mid: str) -> Inbound:
    return Inbound(key=KEY, message_id=mid, user_id="user-a", text=text, is_direct=True)


async def test_answers_go_on_through_an_outage_and_what_was_said_is_written_back(
    server: RedisServer, store: ResilientStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.memory.resilient")
    engine = Engine(store=store, llm=ScriptedLLM(echo), personas=load_personas(BOTS), default_model="m")
    assert await engine.respond(said("첫째", "m1")) == "답: 첫째 (기억: 없음)"
    await server.stop()
    assert await engine.respond(said("둘째", "m2")) == "답: 둘째 (기억: 없음)"  # Redis held "첫째"
    assert store.degraded
    assert await engine.respond(said("셋째", "m3")) == "답: 셋째 (기억: 둘째)"  # kept in the process
    assert await engine.respond(said("셋째", "m3")) == ""  # a redelivery, caught here
    assert await engine.respond(said("첫째", "m1")) == ""  # marked before the outage, caught too
    for i in range(20):
        await engine.respond(said(f"질문 {i}", f"q{i}"))
    assert store.unsynced > 0

    await server.start()  # an empty Redis: it kept nothing on disk
    await recovered(store)
    assert not store.degraded and store.unsynced == 0
    texts = [t.text for t in await store.inner.history(KEY, limit=100)]
    assert texts[:4] == ["둘째", "답: 둘째 (기억: 없음)", "셋째", "답: 셋째 (기억: 둘째)"]
    assert len(texts) == 4 + 2 * 20
    assert await engine.respond(said("둘째", "m2")) == ""  # its dedupe mark was written back too
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings  # one when it went down, one when it came back
    assert warnings[0].startswith("redis unavailable") and warnings[1].startswith("redis is back")


async def test_a_frozen_redis_counts_as_down_and_thawing_it_recovers(
    server: RedisServer, store: ResilientStore
) -> None:
    engine = Engine(store=store, llm=ScriptedLLM(echo), personas=load_personas(BOTS), default_model="m")
    await engine.respond(said("첫째", "m1"))
    server.pause()
    try:
        assert await engine.respond(said("둘째", "m2")) == "답: 둘째 (기억: 없음)"
        assert store.degraded
    finally:
        server.resume()
    await recovered(store)
    assert [t.text for t in await store.history(KEY, limit=10)][-2:] == ["둘째", "답: 둘째 (기억: 없음)"]


async def test_what_needs_the_shared_store_refuses_instead_of_pretending(
    server: RedisServer, store: ResilientStore
) -> None:
    user = UserKey(platform="kakao", tenant="bot1", user_id="user-a", bot="default")
    turns = [
        Turn(role="user", text="제 암호명은 청개구리", at=1.0, user_id="user-a"),
        Turn("assistant", "네", 2.0),
    ]
    await server.stop()
    await store.append(KEY, turns, retention=3600)
    assert store.degraded and await store.history(KEY, limit=10) == turns
    assert await store.facts(user) == [] and await store.summary(KEY) == Summary()
    assert await store.turns_after(KEY, seq=0) == []
    assert not await store.save_summary(KEY, Summary(text="요약", upto=2), replaces=Summary(), folded=[])
    with pytest.raises(StoreError):
        await store.remember(user, "저는 재무팀이에요", limit=30, retention=3600)
    with pytest.raises(StoreError):
        await store.forget_fact(user, 1)
    with pytest.raises(StoreError):
        await store.export_user(platform="kakao", tenant="bot1", user_id="user-a")
    with pytest.raises(StoreError):  # not erased in Redis yet: the user must hear it did not work
        await store.forget_user(platform="kakao", tenant="bot1", user_id="user-a")
    assert await store.history(KEY, limit=10) == []  # but nothing of theirs is kept or written back
    await store.append(KEY, turns, retention=3600)
    with pytest.raises(StoreError):
        await store.clear(KEY)
    assert await store.history(KEY, limit=10) == []
    await server.start()
    await recovered(store)
    assert await store.history(KEY, limit=10) == []


async def test_pending_answers_are_kept_and_written_back(server: RedisServer, store: ResilientStore) -> None:
    other = ConversationKey(platform="kakao", tenant="bot1", conversation="user-b")
    await server.stop()
    await store.put_pending(KEY, "늦은 답변", ttl=60)
    await store.put_pending(other, "또 다른 답변", ttl=60)
    assert await store.pop_pending(KEY) == "늦은 답변"
    assert await store.pop_pending(KEY) is None
    await server.start()
    await recovered(store)
    assert await store.pop_pending(other) == "또 다른 답변"  # now from Redis


async def test_an_answer_kept_once_redis_is_back_is_shared_before_the_probe_notices(
    server: RedisServer,
) -> None:
    # Found by the three-door soak: kept in this process while its probe still waited, a Kakao
    # answer was missed by the process that answered the user's next message, and came late.
    client = Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    slow = ResilientStore(inner=RedisStore(client=client), kind="redis", retry_min=60.0, retry_max=60.0)
    elsewhere = RedisStore.from_url(server.url)  # another process's view
    try:
        await server.stop()
        await slow.put_pending(KEY, "장애 중에 남긴 답변", ttl=60)  # kept here: Redis is away
        assert slow.degraded
        await server.start()  # back, empty; this store's next probe is a minute away
        await slow.put_pending(KEY, "돌아온 뒤에 남긴 답변", ttl=60)  # behind the one kept here
        await slow.put_pending(ConversationKey("kakao", "bot1", "user-b"), "다른 사용자", ttl=60)
        assert slow.degraded
        assert await elsewhere.pop_pending(ConversationKey("kakao", "bot1", "user-b")) == "다른 사용자"
        assert await slow.pop_pending(KEY) == "장애 중에 남긴 답변\n\n돌아온 뒤에 남긴 답변"
    finally:
        await slow.close()
        await elsewhere.close()


async def test_turns_of_one_conversation_still_take_turns_during_an_outage(
    server: RedisServer, store: ResilientStore
) -> None:
    await server.stop()
    await store.ping()  # the readiness probe notices the outage first
    assert store.degraded
    order: list[str] = []
    first_in = asyncio.Event()

    async def turn(name: str) -> None:
        async with store.lock(KEY):
            order.append(f"{name} in")
            first_in.set()
            await asyncio.sleep(0)
            order.append(f"{name} out")

    first = asyncio.create_task(turn("a"))
    await first_in.wait()
    await asyncio.gather(first, turn("b"))
    assert order == ["a in", "a out", "b in", "b out"]


class Unerasable(InMemoryStore):
    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        raise ErasureIncomplete("something was left", remaining=1)


async def test_an_incomplete_erasure_is_reported_not_taken_for_an_outage() -> None:
    store = ResilientStore(inner=Unerasable())
    with pytest.raises(ErasureIncomplete):
        await store.forget_user(platform="kakao", tenant="bot1", user_id="user-a")
    assert not store.degraded
    await store.close()


async def test_back_from_an_outage_the_store_is_shared_at_once_while_kept_turns_are_written_back(
    server: RedisServer, store: ResilientStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the soak: waiting for an empty buffer before using Redis again kept a busy process
    # on its local memory for half a minute, as new turns kept coming in.
    other = ConversationKey(platform="kakao", tenant="bot1", conversation="user-b")
    await server.stop()
    await store.append(
        KEY, [Turn("user", "장애 중 질문", 1.0), Turn("assistant", "장애 중 답", 2.0)], retention=3600
    )
    assert store.degraded
    gate, writing = asyncio.Event(), asyncio.Event()
    append = store.inner.append

    async def slow_append(key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        if key == KEY and not gate.is_set():
            writing.set()
            await gate.wait()  # the write-back is slow: the buffer is still being written
        await append(key, turns, retention=retention)

    monkeypatch.setattr(store.inner, "append", slow_append)
    await server.start()
    async with asyncio.timeout(10):
        await store.wait_healthy()
        await writing.wait()
        assert not store.degraded  # shared again while the write-back goes on
        await store.append(other, [Turn("user", "다른 대화", 3.0)], retention=3600)
        assert [t.text for t in await store.inner.history(other, limit=10)] == [
            "다른 대화"
        ]  # straight to Redis
        await store.append(KEY, [Turn("user", "복구 후 질문", 4.0)], retention=3600)  # behind the kept turns
        assert [t.text for t in await store.history(KEY, limit=10)] == [
            "장애 중 질문",
            "장애 중 답",
            "복구 후 질문",
        ]
        gate.set()
        await store.wait_written_back()
    assert [t.text for t in await store.inner.history(KEY, limit=10)] == [
        "장애 중 질문",
        "장애 중 답",
        "복구 후 질문",
    ]
    assert store.unsynced == 0
