"""The Redis job queue on a real Redis: two queues on one prefix stand for two processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from core.errors import StoreError
from core.jobs import Claim, Job, new_job
from core.memory import redis_jobs
from core.memory.redis_codec import Keys
from core.memory.redis_jobs import GROUP, RedisQueue
from core.types import ConversationKey, Inbound
from tests.support.redis import delete_prefix

LEASE = 0.5
KEY = ConversationKey("kakao", "bot-1", "kakao-user-7f3a")


async def put(queue: RedisQueue, item: Job, *, seen: dict[str, float] | None = None) -> Claim:
    claim = await queue.put(item, seen=seen)
    assert claim is not None
    return claim


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
    claim = await put(a, job())
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
    claim = await put(a, job())
    await a.mark(claim, "slack:message:0", "1700000001.000100")
    [again] = await taken_over(b)  # "a" died: it renews nothing any more
    assert again.job == claim.job and again.entry == claim.entry
    assert again.attempt == 2 and again.marks == {"slack:message:0": "1700000001.000100"}
    assert await owner(redis_client, redis_prefix, again) == "b"
    assert await a.renew([claim]) == set()  # had "a" only stalled, it would now stop
    [third] = await taken_over(a)
    assert third.attempt == 3
    await a.done(third)
    assert await redis_client.exists(Keys(redis_prefix).job(claim.job.id)) == 0


async def test_a_process_that_lost_its_job_cannot_mark_it(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    # "a" stalled past the lease and "b" took the job over: "a" learns it at its next mark
    # (and stops delivering), and what "a" would have marked is not what "b" reads.
    a, b = queues
    claim = await put(a, job())
    assert await a.mark(claim, "teams:stream", "activity-1") is True
    await a.release([claim])
    [again] = await b.takeover(count=10)

    assert await a.mark(claim, "teams:parts", "1") is False
    assert await b.mark(again, "teams:parts", "1") is True
    state = await redis_client.hgetall(Keys(redis_prefix).job(claim.job.id))
    assert state == {b"#attempt": b"1", b"teams:stream": b"activity-1", b"teams:parts": b"1"}
    assert key_slot(Keys(redis_prefix).job(claim.job.id).encode()) == key_slot(
        f"{redis_prefix}:jobs".encode()
    )


async def test_a_mark_is_tried_through_a_redis_restart(
    queues: tuple[RedisQueue, RedisQueue],
    redis_client: Redis,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The soak: a Slack "started" mark lost to a Redis restart made the takeover post a
    # second answer instead of finding the first.
    a, _ = queues
    claim = await put(a, job())
    failures = restarting(a, monkeypatch, times=3)
    async with asyncio.timeout(10):
        assert await a.mark(claim, "slack:started", "1700000001.000000") is True
    assert len(failures) == 3
    assert (
        await redis_client.hget(Keys(redis_prefix).job(claim.job.id), "slack:started") == b"1700000001.000000"
    )


def server_says(queue: RedisQueue, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]) -> None:
    """Make the queue's INFO report ``fields`` (read at each call, so a test may change them)."""
    info = queue._control.info

    async def said(*args: Any, **kwargs: Any) -> Any:
        return {**await info(*args, **kwargs), **fields}

    monkeypatch.setattr(queue._control, "info", said)


async def orphan(queues: tuple[RedisQueue, RedisQueue]) -> Claim:
    """A job ``a`` put and let go of at once: the next takeover anywhere may take it."""
    a, _ = queues
    claim = await put(a, job())
    await a.release([claim])
    return claim


async def test_no_takeovers_for_a_lease_after_redis_restarted(
    queues: tuple[RedisQueue, RedisQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nobody could renew while Redis was away, so every running job looks orphaned right
    # after a restart, also to a process that did not notice the outage.
    _, b = queues
    claim = await orphan(queues)
    [first] = await b.takeover(count=10)  # b's first look: a server up for long, no wait
    await b.release([first])  # an orphan again
    server_says(b, monkeypatch, {"run_id": "f" * 40, "uptime_in_seconds": 0})
    assert await b.takeover(count=10) == [], "the server changed: a lease before any takeover"
    [again] = await taken_over(b)  # a lease later
    assert again.entry == claim.entry and again.attempt == 3


async def test_no_takeovers_while_redis_loads_its_data_and_for_a_lease_after(
    queues: tuple[RedisQueue, RedisQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large restart reads its data for seconds, refusing renewals meanwhile: the lease the
    # running processes get to renew their jobs counts from when it is done.
    _, b = queues
    claim = await orphan(queues)
    server = {"loading": 1}
    server_says(b, monkeypatch, server)
    assert await b.takeover(count=10) == [], "loading: nothing can be renewed yet"
    server["loading"] = 0
    assert await b.takeover(count=10) == [], "loaded just now: a lease for the renewals first"
    [again] = await taken_over(b)
    assert again.entry == claim.entry


async def test_released_jobs_are_taken_over_at_once(queues: tuple[RedisQueue, RedisQueue]) -> None:
    a, b = queues
    claims = [await put(a, job(f"질문 {n}")) for n in range(3)]
    await a.renew(claims)
    await a.release(claims[:2])
    taken = await b.takeover(count=10)
    assert sorted(c.entry for c in taken) == sorted(c.entry for c in claims[:2])
    assert await a.renew(claims) == {claims[2].entry}


async def test_an_unreadable_entry_is_dropped(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    a, b = queues
    await put(a, job())  # creates the stream and the group
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
    first, second = await put(a, job("첫째")), await put(b, job("둘째"))
    elsewhere = await put(b, job("다른 대화", key=ConversationKey("kakao", "bot-1", "someone-else")))
    assert (first.job.ticket, second.job.ticket, elsewhere.job.ticket) == (1, 2, 1)
    order: list[str] = []

    async def take(queue: RedisQueue, claim: Claim) -> None:
        async with queue.turn(claim, wait=30.0):
            order.append(claim.job.inbound.text)
            await queue.done(claim)

    async with asyncio.timeout(10):
        async with a.turn(first, wait=30.0):
            waiting = asyncio.create_task(take(b, second))
            await take(b, elsewhere)  # another conversation goes ahead
            for _ in range(5):
                await redis_client.ping()  # give the waiting turn a few rounds with Redis
            order.append("첫째")
            await a.done(first)  # passes the turn on
        await waiting
    assert order == ["다른 대화", "첫째", "둘째"]


async def test_a_turn_waits_for_a_missing_earlier_job_only_so_long(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    a, _ = queues
    gone = await put(a, job("사라진 질문"))
    # It left the queue without passing the turn on (trimmed from a full stream, say).
    await redis_client.xdel(f"{redis_prefix}:jobs", gone.entry)
    [queued] = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:order:*:queued")]
    await redis_client.delete(queued)
    second = await put(a, job("다음 질문"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(5), a.turn(second, wait=0.3):
        waited = loop.time() - started
    assert 0.3 <= waited < 0.3 * redis_jobs.ORDER_PATIENCE


async def test_a_turn_keeps_waiting_past_its_wait_while_the_earlier_job_is_queued(
    queues: tuple[RedisQueue, RedisQueue],
) -> None:
    # Found by the soak with a 5 s lease: getting through a dead process's jobs on a saturated
    # machine took longer than a turn's wait, and later messages went ahead of earlier ones.
    a, b = queues
    late = await put(a, job("늦어지는 질문"))  # its process died; it is taken over later
    second = await put(b, job("다음 질문"))
    order: list[str] = []

    async def take() -> None:
        async with b.turn(second, wait=0.2):
            order.append("다음 질문")

    waiting = asyncio.create_task(take())
    done, _ = await asyncio.wait({waiting}, timeout=0.6)  # three of its waits
    assert not done
    order.append("늦어지는 질문")
    await a.done(late)
    async with asyncio.timeout(5):
        await waiting
    assert order == ["늦어지는 질문", "다음 질문"]


async def test_consumers_of_processes_long_gone_are_forgotten(
    queues: tuple[RedisQueue, RedisQueue],
    redis_url: str,
    redis_client: Redis,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_jobs, "GONE_AFTER", -1.0)  # "long gone" = any idle time, for the test
    a, b = queues
    await a.done(await put(a, job("끝난 질문")))  # "a" holds nothing any more
    holding = RedisQueue.from_url(redis_url, prefix=redis_prefix, consumer="holding", lease=60.0)
    try:
        await put(holding, job("진행 중인 질문"))  # not orphaned yet: its consumer must stay
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
    first, second = await put(a, job("첫째")), await put(b, job("둘째"))
    real_get, real_mget = b._client.get, b._client.mget
    failed: list[int] = []

    def restarting(real: Any) -> Any:
        async def read(*args: Any) -> object:
            if len(failed) < 3:  # Redis is away for three reads, then back
                failed.append(1)
                raise RedisConnectionError("Connection closed by server.")
            return await real(*args)

        return read

    monkeypatch.setattr(b._client, "get", restarting(real_get))
    monkeypatch.setattr(b._client, "mget", restarting(real_mget))
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
            await a.done(first)
        await waiting
    assert order == ["첫째", "둘째"]


async def test_a_job_cancelled_in_its_turn_keeps_the_next_one_waiting(
    queues: tuple[RedisQueue, RedisQueue],
) -> None:
    # A job whose lease was lost (or whose process shuts down) is not done: whoever takes it
    # over answers it first, so the next message of the conversation must not start.
    a, b = queues
    first, second = await put(a, job("첫째")), await put(b, job("둘째"))
    with contextlib.suppress(RuntimeError):
        async with a.turn(first, wait=30.0):
            raise RuntimeError("cancelled")
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(5), b.turn(second, wait=0.3):
        assert loop.time() - started >= 0.3  # it waited its whole order wait


async def test_a_ticket_and_its_job_are_written_together_in_the_streams_slot(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    # One script gives the ticket and adds the job (and one marks it served and removes it),
    # which Redis Cluster allows only when every key is in one slot.
    a, _ = queues
    claim = await put(a, job("첫째"))
    [(_, fields)] = cast(
        list[tuple[bytes, dict[bytes, bytes]]], await redis_client.xrange(f"{redis_prefix}:jobs")
    )
    assert fields[b"ticket"] == b"1" and claim.job.ticket == 1
    await a.done(claim)
    assert await redis_client.xlen(f"{redis_prefix}:jobs") == 0
    order_keys = sorted([k.decode() async for k in redis_client.scan_iter(match=f"{redis_prefix}:order:*")])
    assert [k.rsplit(":", 1)[1] for k in order_keys] == ["served", "ticket"]  # "queued" emptied
    assert {key_slot(k.encode()) for k in order_keys} == {key_slot(f"{redis_prefix}:jobs".encode())}
    assert await redis_client.get(order_keys[0]) == b"1"


def restarting(queue: RedisQueue, monkeypatch: pytest.MonkeyPatch, *, times: int) -> list[int]:
    """Make the queue's next ``times`` commands fail as during a Redis restart; returns the
    list of failures so far."""
    execute = queue._client.execute_command
    failures: list[int] = []

    async def refused_at_first(*args: Any, **kwargs: Any) -> Any:
        if len(failures) < times:
            failures.append(1)
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1. Connection refused.")
        return await execute(*args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(queue._client, "execute_command", refused_at_first)
    return failures


async def test_done_keeps_trying_through_a_redis_restart(
    queues: tuple[RedisQueue, RedisQueue],
    redis_client: Redis,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by the soak: an answered job whose removal failed during a Redis restart held its
    # conversation back until it was taken over, and was then delivered a second time.
    a, _ = queues
    claim = await put(a, job("첫째"))
    failures = restarting(a, monkeypatch, times=2)
    async with asyncio.timeout(10):
        await a.done(claim)
    assert len(failures) == 2
    assert await redis_client.xlen(f"{redis_prefix}:jobs") == 0


async def test_done_gives_up_on_a_long_outage(
    queues: tuple[RedisQueue, RedisQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = queues
    claim = await put(a, job("첫째"))
    monkeypatch.setattr(redis_jobs, "SETTLE_WAIT", 0.2)

    restarting(a, monkeypatch, times=10_000)
    with pytest.raises(StoreError):
        await a.done(claim)


async def test_waiting_jobs_are_watched_with_one_read_per_round(
    queues: tuple[RedisQueue, RedisQueue], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the soak: a thousand waiting jobs each polling its own key kept Redis and the
    # connection pool so busy that lease renewals came too late and jobs were taken over.
    a, b = queues
    keys = [ConversationKey("kakao", "bot-1", f"user-{n}") for n in range(10)]
    firsts = [await put(a, job("첫째", key=key)) for key in keys]
    seconds = [await put(b, job("둘째", key=key)) for key in keys]
    reads: list[int] = []
    real_get, real_mget = b._client.get, b._client.mget
    gets: list[str] = []

    async def counting_get(name: str) -> object:
        gets.append(name)
        return await real_get(name)

    watched = asyncio.Event()

    async def counting_mget(names: list[str]) -> object:
        reads.append(len(names))
        if len(reads) >= 3:
            watched.set()  # the watch has made a few rounds
        return await real_mget(names)

    monkeypatch.setattr(b._client, "get", counting_get)
    monkeypatch.setattr(b._client, "mget", counting_mget)
    entered: list[int] = []

    async def second_turn(claim: Claim) -> None:
        async with b.turn(claim, wait=30.0):
            entered.append(claim.job.ticket)
            await b.done(claim)

    waiting = [asyncio.create_task(second_turn(claim)) for claim in seconds]
    async with asyncio.timeout(10):
        await watched.wait()
        assert not entered
        for claim in firsts:
            await a.done(claim)
        await asyncio.gather(*waiting)
    assert entered == [2] * 10
    assert len(gets) == 10  # one look on arrival each, then only the shared watch
    assert reads[:3] == [10, 10, 10]  # every round reads every waiting conversation at once


async def test_a_message_is_claimed_and_queued_in_one_step(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    # Found by the soak: doors claimed a message (dedupe) and then queued it; a process killed
    # in between left a claim without a job, and every redelivery was dropped as seen: lost.
    a, b = queues
    seen = {"slack:event:Ev1": 60.0, "slack:message:C1:1.0": 60.0}
    first = await put(a, job("첫째"), seen=seen)
    assert first.job.ticket == 1
    again = await b.put(job("첫째"), seen={"slack:event:Ev2": 60.0, "slack:message:C1:1.0": 60.0})
    assert again is None  # the same message by another event: nothing written, no ticket taken
    assert await redis_client.xlen(f"{redis_prefix}:jobs") == 1
    marks = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:seen:*")]
    assert len(marks) == 2  # Ev2 was not claimed either
    assert all([55_000 < await redis_client.pttl(k) <= 60_000 for k in marks])
    later = await put(b, job("둘째"), seen={"slack:message:C1:2.0": 60.0})
    assert later.job.ticket == 2


def watched_puts(queue: RedisQueue) -> asyncio.Queue[object]:
    """The results of the queue's put script, one by one (0: it gave way to a parked message)."""
    results: asyncio.Queue[object] = asyncio.Queue()
    script = queue._put

    async def put(**kwargs: Any) -> object:
        result = await script(**kwargs)
        results.put_nowait(result)
        return result

    queue._put = put  # type: ignore[assignment]
    return results


async def test_a_later_message_gives_way_to_an_earlier_one_parked_by_another_process(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    # Found by the soak: messages held by two processes through a Redis restart were recorded
    # in whichever order the processes saw Redis back, not in the order they arrived.
    a, b = queues
    earlier, later = job("첫째"), job("둘째")
    assert earlier.accepted_at < later.accepted_at
    await a.park([earlier])
    results = watched_puts(b)
    putting_later = asyncio.create_task(b.put(later))
    assert await results.get() == 0  # it gives way, writing nothing
    first = await put(a, earlier)
    second = await putting_later
    assert second is not None
    assert (first.job.ticket, second.job.ticket) == (1, 2)
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:order:*:parked")] == []


async def test_an_earlier_parked_message_whose_process_died_is_waited_for_only_so_long(
    queues: tuple[RedisQueue, RedisQueue],
    redis_client: Redis,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_jobs, "PARK_WAIT", 0.2)
    a, b = queues
    await a.park([job("첫째")])  # and a dies before it records it
    results = watched_puts(b)
    later = await put(b, job("둘째"))
    assert later.job.ticket == 1
    assert (await results.get(), results.qsize() > 0) == (0, True)  # it waited first
    assert [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:order:*:parked")] == []
    again = await put(b, job("셋째"))  # the dead one is forgotten: no more waiting
    assert again.job.ticket == 2


async def test_a_parked_message_does_not_hold_back_earlier_ones_or_other_conversations(
    queues: tuple[RedisQueue, RedisQueue],
) -> None:
    a, b = queues
    earlier = job("첫째")
    other = job("다른 대화", ConversationKey("kakao", "bot-1", "kakao-user-other"))
    parked = job("둘째")
    await a.park([parked])
    results = watched_puts(b)
    assert (await put(b, earlier)).job.ticket == 1  # arrived before the parked one: goes first
    assert (await put(b, other)).job.ticket == 1
    assert 0 not in [await results.get(), await results.get()] and results.empty()  # no waiting
    assert (await put(a, parked)).job.ticket == 2


async def test_a_put_run_again_after_its_reply_was_lost_records_the_job_once(
    queues: tuple[RedisQueue, RedisQueue], redis_client: Redis, redis_prefix: str
) -> None:
    # The Redis clients try a command again once when the server closed the connection under it
    # (right after a restart); the put may have run already.
    a, _ = queues
    message = job("한 번만")
    first = await put(a, message, seen={"kakao:req:1": 60.0})
    again = await put(a, message, seen={"kakao:req:1": 60.0})
    assert (again.entry, again.job.ticket) == (first.entry, first.job.ticket) == (first.entry, 1)
    assert await redis_client.xlen(f"{redis_prefix}:jobs") == 1
    assert (await put(a, job("다음"))).job.ticket == 2
