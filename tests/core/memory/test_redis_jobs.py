"""The Redis job queue on a real Redis: two queues on one prefix stand for two processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from core.jobs import Claim, Job, new_job
from core.memory import redis_jobs
from core.memory.redis_jobs import GROUP, RedisQueue
from core.types import ConversationKey, Inbound
from tests.support.redis import delete_prefix

LEASE = 0.5
KEY = ConversationKey("kakao", "bot-1", "kakao-user-7f3a")


def job(text: str = "질문", key: ConversationKey = KEY) -> Job:
    inbound = Inbound(key=key, message_id=text, user_id="kakao-user-7f3a", text=text)
    return new_job(door="kakao", inbound=inbound, target={"callback": ""}, origin="test")


@pytest.fixture
async def queues(
    redis_url: str, redis_prefix: str, redis_client: Redis
) -> AsyncIterator[tuple[RedisQueue, RedisQueue]]:
    first = RedisQueue.from_url(redis_url, prefix=redis_prefix, consumer="a", lease=LEASE)
    second = RedisQueue.from_url(redis_url, prefix=redis_prefix, consumer="b", lease=LEASE)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
        await delete_prefix(redis_client, redis_prefix)


async def taken_over(queue: RedisQueue, count: int = 1) -> list[Claim]:
    """What ``queue`` takes over once the lease has run out (polled: it is Redis's clock)."""
    claims: list[Claim] = []
    for _ in range(100):
        claims += await queue.takeover(count=10)
        if len(claims) >= count:
            return claims
        await asyncio.sleep(LEASE / 4)  # polling a condition: the entry's idle time
    pytest.fail(f"nothing was taken over within {100 * LEASE / 4:.1f} s")


async def owner(redis_client: Redis, prefix: str, claim: Claim) -> str:
    [pending] = await redis_client.xpending_range(f"{prefix}:jobs", GROUP, claim.entry, claim.entry, 1)
    name = pending["consumer"]
    return name.decode() if isinstance(name, bytes) else str(name)


async def test_a_job_is_recorded_and_held_by_the_process_that_put_it(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    a, b = queues
    claim = await a.put(job())
    assert claim.attempt == 1 and claim.marks == {} and claim.job.ticket == 1
    assert await owner(redis_client, redis_prefix, claim) == "a"
    assert await a.renew([claim]) == {claim.entry}
    assert await b.takeover(count=10) == []  # renewed just now: not an orphan
    assert "kakao-user-7f3a" not in str(await redis_client.keys(f"{redis_prefix}:*"))  # key names hashed
    await a.done(claim)
    assert await redis_client.xlen(f"{redis_prefix}:jobs") == 0
    assert await redis_client.xpending(f"{redis_prefix}:jobs", GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_a_job_not_renewed_is_taken_over_with_what_the_first_attempt_marked(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    a, b = queues
    claim = await a.put(job())
    await a.mark(claim, "slack:message:0", "1700000001.000100")
    [again] = await taken_over(b)  # "a" died: it renews nothing any more
    assert again.job == claim.job and again.entry == claim.entry
    assert again.attempt == 2 and again.marks == {"slack:message:0": "1700000001.000100"}
    assert await owner(redis_client, redis_prefix, again) == "b"
    assert await a.renew([claim]) == set()  # had "a" only stalled, it would now stop
    [third] = await taken_over(a)
    assert third.attempt == 3
    await a.done(third)
    assert await redis_client.exists(f"{redis_prefix}:job:{{{claim.job.id}}}") == 0


async def test_released_jobs_are_taken_over_at_once(queues: tuple[RedisQueue, RedisQueue]) -> None:
    a, b = queues
    claims = [await a.put(job(f"질문 {n}")) for n in range(3)]
    await a.renew(claims)
    await a.release(claims[:2])
    taken = await b.takeover(count=10)
    assert sorted(c.entry for c in taken) == sorted(c.entry for c in claims[:2])
    assert await a.renew(claims) == {claims[2].entry}


async def test_an_unreadable_entry_is_dropped(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    a, b = queues
    await a.put(job())  # creates the stream and the group
    stream = f"{redis_prefix}:jobs"
    entry = await redis_client.xadd(stream, {"job": "{not json"})
    await redis_client.xreadgroup(GROUP, "gone", {stream: ">"})
    await redis_client.xclaim(stream, GROUP, "gone", 0, [entry], idle=60_000, justid=True)
    taken = await b.takeover(count=10)
    assert all(c.entry.encode() != entry for c in taken)
    assert not await redis_client.xrange(stream, entry, entry)


async def test_jobs_of_one_conversation_take_their_turns_across_processes(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis
) -> None:
    a, b = queues
    first, second = await a.put(job("첫째")), await b.put(job("둘째"))
    elsewhere = await b.put(job("다른 대화", key=ConversationKey("kakao", "bot-1", "someone-else")))
    assert (first.job.ticket, second.job.ticket, elsewhere.job.ticket) == (1, 2, 1)
    order: list[str] = []

    async def take(queue: RedisQueue, claim: Claim) -> None:
        async with queue.turn(claim, wait=30.0):
            order.append(claim.job.inbound.text)

    async with asyncio.timeout(10):
        async with a.turn(first, wait=30.0):
            waiting = asyncio.create_task(take(b, second))
            await take(b, elsewhere)  # another conversation goes ahead
            for _ in range(5):
                await redis_client.ping()  # give the waiting turn a few rounds with Redis
            order.append("첫째")
        await waiting
    assert order == ["다른 대화", "첫째", "둘째"]


async def test_a_turn_waits_for_a_missing_earlier_job_only_so_long(
    queues: tuple[RedisQueue, RedisQueue],
) -> None:
    a, _ = queues
    await a.put(job("사라진 질문"))  # its process died before it ran; nobody answers it
    second = await a.put(job("다음 질문"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(5), a.turn(second, wait=0.3):
        waited = loop.time() - started
    assert waited >= 0.3


async def test_consumers_of_processes_long_gone_are_forgotten(
    queues: tuple[RedisQueue, RedisQueue],
    redis_url: str,
    redis_client: Redis,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_jobs, "GONE_AFTER", -1.0)  # "long gone" = any idle time, for the test
    a, b = queues
    await a.done(await a.put(job("끝난 질문")))  # "a" holds nothing any more
    holding = RedisQueue.from_url(redis_url, prefix=redis_prefix, consumer="holding", lease=60.0)
    try:
        await holding.put(job("진행 중인 질문"))  # not orphaned yet: its consumer must stay
        await b.takeover(count=10)
    finally:
        await holding.close()
    consumers = await redis_client.xinfo_consumers(f"{redis_prefix}:jobs", GROUP)
    assert sorted(c["name"].decode() for c in consumers) == ["holding"]


async def test_a_turn_waits_through_a_redis_restart_instead_of_jumping_the_queue(
    queues: tuple[RedisQueue, RedisQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the soak (bench/soak.py): a Redis restart made every job waiting for its turn
    # answer at once, ahead of the earlier messages of its conversation.
    a, b = queues
    first, second = await a.put(job("첫째")), await b.put(job("둘째"))
    real_get = b._client.get
    failed: list[int] = []

    async def restarting_get(name: str) -> object:
        if len(failed) < 3:  # Redis is away for three reads, then back
            failed.append(1)
            raise RedisConnectionError("Connection closed by server.")
        return await real_get(name)

    monkeypatch.setattr(b._client, "get", restarting_get)
    order: list[str] = []

    async def second_turn() -> None:
        async with b.turn(second, wait=30.0):
            order.append("둘째")

    async with asyncio.timeout(10):
        async with a.turn(first, wait=30.0):
            waiting = asyncio.create_task(second_turn())
            for _ in range(500):
                if len(failed) == 3 or waiting.done():
                    break
                await asyncio.sleep(0.01)  # polling: has the waiting turn met the whole outage
            order.append("첫째")
        await waiting
    assert order == ["첫째", "둘째"]
