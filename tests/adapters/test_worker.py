"""The worker: runs jobs, keeps their leases, takes over orphans, hands jobs over on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from adapters import worker as worker_module
from adapters.runtime import TaskSet
from adapters.worker import (
    CONTROL_POOL,
    MAX_ATTEMPTS,
    PROBE_SHORT,
    QUEUE_POOL_WAIT,
    Delivery,
    Worker,
    claims_in,
    open_queue,
)
from core.errors import StoreError
from core.jobs import Claim, Job, new_job
from core.jobs_local import LocalQueue
from core.memory.redis_codec import Keys
from core.memory.redis_jobs import RedisQueue
from core.types import ConversationKey, Inbound
from tests.support.fakes import InMemoryStore
from tests.support.redis import delete_prefix
from tests.support.redis_server import RedisServer


def job(text: str, conversation: str = "u1") -> Job:
    inbound = Inbound(
        key=ConversationKey("kakao", "bot", conversation), message_id=text, user_id="u", text=text
    )
    return new_job(door="test", inbound=inbound, target={}, origin="test")


class Recorder:
    """A deliverer that records what it delivers and can hold a delivery until released."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, int, dict[str, str]]] = []
        self.hold: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self._changed = asyncio.Condition()

    async def deliver(self, delivery: Delivery) -> None:
        self.started.set()
        try:
            if self.hold is not None:
                await self.hold.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        await delivery.mark("seen", delivery.job.inbound.text)
        async with self._changed:
            self.delivered.append(
                (delivery.job.inbound.text, delivery.claim.attempt, dict(delivery.claim.marks))
            )
            self._changed.notify_all()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: len(self.delivered) >= count)


@pytest.fixture
async def prefix(redis_prefix: str, redis_client: Redis) -> AsyncIterator[str]:
    yield redis_prefix
    await delete_prefix(redis_client, redis_prefix)


@asynccontextmanager
async def running(
    redis_url: str,
    prefix: str,
    name: str,
    deliverer: Recorder,
    *,
    lease: float = 0.6,
    events: list[str] | None = None,
) -> AsyncIterator[tuple[Worker, TaskSet]]:
    tasks = TaskSet()
    record = events.append if events is not None else None
    worker = Worker(tasks=tasks, name=name, lease=lease, order_wait=10.0, events=record)
    worker.add("test", deliverer)
    queue = RedisQueue.from_url(redis_url, prefix=prefix, consumer=name, lease=lease)
    worker.attach(queue)
    worker.start()
    try:
        yield worker, tasks
    finally:
        await worker.stop(grace=1.0)
        await tasks.drain(1.0)
        await queue.close()


async def test_without_redis_jobs_run_in_process_in_order() -> None:
    tasks, recorder = TaskSet(), Recorder()
    worker = Worker(tasks=tasks, name="solo", lease=60.0, order_wait=10.0)
    worker.add("test", recorder)
    worker.start()  # nothing to renew or take over in process
    for n in range(3):
        await worker.submit(job(f"질문 {n}"))
    await tasks.join()
    assert [text for text, _, _ in recorder.delivered] == ["질문 0", "질문 1", "질문 2"]
    assert not worker.durable and worker.running == 0


async def test_an_orphaned_job_is_taken_over_with_its_marks(redis_url: str, prefix: str) -> None:
    dead = RedisQueue.from_url(redis_url, prefix=prefix, consumer="dead", lease=0.6)
    claim = await dead.put(job("고아 질문"))
    assert claim is not None
    await dead.mark(claim, "slack:message:0", "1700000001.000100")
    await dead.close()  # the process dies: its job is never renewed
    recorder, events = Recorder(), list[str]()
    async with running(redis_url, prefix, "survivor", recorder, events=events) as (worker, _):
        await recorder.wait_for(1)
        await worker.submit(job("새 질문", conversation="u2"))
        await recorder.wait_for(2)
    assert recorder.delivered[0] == ("고아 질문", 2, {"slack:message:0": "1700000001.000100"})
    assert events == ["taken_over", "recorded"]  # counted for dari_jobs_total


async def test_on_shutdown_unfinished_jobs_are_handed_over_at_once(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = Recorder()
    first.hold = asyncio.Event()  # never released: the job outlives the grace period
    async with running(redis_url, prefix, "leaving", first, lease=60.0) as (worker, _):
        await worker.submit(job("긴 질문"))
        await first.started.wait()
    assert first.cancelled.is_set() and first.delivered == []
    assert "1 jobs unfinished at shutdown: handing them over" in caplog.text
    second = Recorder()
    async with running(redis_url, prefix, "staying", second, lease=60.0):  # no lease to wait out
        await second.wait_for(1)
    assert second.delivered[0][:2] == ("긴 질문", 2)


async def test_a_job_whose_lease_was_lost_stops_here(
    redis_url: str, prefix: str, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    recorder.hold = asyncio.Event()
    async with running(redis_url, prefix, "stalled", recorder) as (worker, _):
        await worker.submit(job("질문"))
        await recorder.started.wait()
        # Another process took it over while this one was stalled past the lease.
        [pending] = await redis_client.xpending_range(f"{prefix}:jobs", "dari", "-", "+", 10)
        await redis_client.xclaim(f"{prefix}:jobs", "dari", "other", 0, [pending["message_id"]], justid=True)
        async with asyncio.timeout(10):
            await recorder.cancelled.wait()
    assert recorder.delivered == []
    assert "job lease lost; stopping here" in caplog.text


async def test_a_job_that_keeps_killing_processes_is_dropped(
    redis_url: str, prefix: str, redis_client: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    dead = RedisQueue.from_url(redis_url, prefix=prefix, consumer="dead", lease=0.6)
    claim = await dead.put(job("독이 든 질문"))
    assert claim is not None
    await redis_client.hset(Keys(prefix).job(claim.job.id), "#attempt", MAX_ATTEMPTS - 1)
    await dead.release([claim])
    await dead.close()
    recorder = Recorder()
    async with running(redis_url, prefix, "survivor", recorder):
        for _ in range(200):
            if not await redis_client.xlen(f"{prefix}:jobs"):
                break
            await asyncio.sleep(0.05)  # polling a condition: the entry is gone
        else:
            pytest.fail("the job was not dropped")
    assert recorder.delivered == []
    assert f"job dropped after {MAX_ATTEMPTS} attempts" in caplog.text


@pytest.fixture
def short_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages wait 0.2 s for an absent queue, and are held until 1 s into an outage."""
    monkeypatch.setattr(worker_module, "OUTAGE_HOLD", 0.2)
    monkeypatch.setattr(worker_module, "OUTAGE_SHORT", 1.0)


@pytest.mark.usefixtures("short_holds")
async def test_without_redis_answers_still_go_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    tasks, recorder = TaskSet(), Recorder()
    worker = Worker(tasks=tasks, name="cut-off", lease=60.0, order_wait=10.0)
    worker.add("test", recorder)
    queue = RedisQueue.from_url("redis://127.0.0.1:9/0", prefix="dari", consumer="cut-off", lease=60.0)
    worker.attach(queue)
    for n in range(2):
        await worker.submit(job(f"질문 {n}"))
    await tasks.join()
    await queue.close()
    assert [text for text, _, _ in recorder.delivered] == ["질문 0", "질문 1"]
    said = [r for r in caplog.records if "jobs cannot be recorded" in r.getMessage()]
    assert len(said) == 1  # once, not per message


@pytest.mark.usefixtures("short_holds")
async def test_in_a_short_outage_the_queue_is_checked_at_least_every_tenth_of_a_second() -> None:
    # Messages wait up to 2 s for the queue at the start of an outage; pauses grown to 0.8 s
    # between checks could make them give up on a queue that was back already.
    tasks, recorder = TaskSet(), Recorder()
    worker = Worker(tasks=tasks, name="cut-off", lease=60.0, order_wait=10.0)
    worker.add("test", recorder)
    queue = RedisQueue.from_url("redis://127.0.0.1:9/0", prefix="dari", consumer="cut-off", lease=60.0)
    worker.attach(queue)
    await worker.submit(job("질문"))  # the queue is found down here
    for _ in range(8):
        assert await worker._probe_round() is True  # still down: ask again
    await worker.stop(grace=1.0)
    await tasks.join()
    await queue.close()
    assert worker._probe_pause == PROBE_SHORT


@pytest.mark.usefixtures("short_holds")
async def test_jobs_are_recorded_again_once_redis_returns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    recorder = Recorder()
    async with RedisServer() as server:
        async with running(server.url, "dari", "outage", recorder, lease=0.6) as (worker, tasks):
            await server.stop()
            await worker.submit(job("장애 중 질문"))  # answered all the same, without durability
            await tasks.join()
            await server.start()  # back, empty: the queue's script recreates stream and group
            for _ in range(200):  # polling a condition: the worker's next look at the queue
                if any("jobs are recorded again" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.02)
            await worker.submit(job("복구 후 질문"))
            await tasks.join()
            client = Redis.from_url(server.url)
            try:
                assert await client.xinfo_groups("dari:jobs")  # recorded durably again
            finally:
                await client.aclose()
    assert [text for text, _, _ in recorder.delivered] == ["장애 중 질문", "복구 후 질문"]
    assert sum("jobs cannot be recorded" in r.getMessage() for r in caplog.records) == 1


async def test_a_message_during_a_redis_restart_waits_for_it_and_keeps_its_place(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the soak: messages accepted in the seconds of a Redis restart ran without a
    # ticket, so they overtook earlier messages of their conversation held by another process.
    monkeypatch.setattr(worker_module, "OUTAGE_HOLD", 30.0)  # however slow this machine restarts Redis
    recorder = Recorder()
    async with RedisServer() as server:
        async with running(server.url, "dari", "restart", recorder, lease=60.0) as (worker, tasks):
            await server.stop()
            submitted = asyncio.create_task(worker.submit(job("재시작 중 질문")))
            for _ in range(500):  # polling a condition: the submit has met the outage
                if "jobs cannot be recorded" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            assert not submitted.done()
            await server.start()
            async with asyncio.timeout(10):
                await submitted
            await tasks.join()
            client = Redis.from_url(server.url)
            try:
                tickets = [k async for k in client.scan_iter(match="dari:order:*:ticket")]
                assert len(tickets) == 1 and await client.get(tickets[0]) == b"1"  # recorded, in order
            finally:
                await client.aclose()
    assert [text for text, _, _ in recorder.delivered] == ["재시작 중 질문"]


async def test_messages_of_a_longer_restart_are_acknowledged_held_and_recorded_in_order(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the soak: a Redis restart longer than a message waits (a saturated machine took
    # 2.6 s) let the messages accepted meanwhile run without their tickets, out of order.
    monkeypatch.setattr(worker_module, "OUTAGE_HOLD", 0.2)
    monkeypatch.setattr(worker_module, "OUTAGE_SHORT", 60.0)  # however slow this machine restarts Redis
    recorder, events = Recorder(), list[str]()
    async with RedisServer() as server:
        async with running(server.url, "dari", "held", recorder, lease=60.0, events=events) as (
            worker,
            tasks,
        ):
            await server.stop()
            async with asyncio.timeout(5):  # each is acknowledged after OUTAGE_HOLD, Redis still away
                assert [await worker.submit(job(f"재시작 중 질문 {n}")) for n in range(3)] == [True] * 3
            assert recorder.delivered == [] and worker.running == 0  # held, not run without the queue
            await server.start()
            await recorder.wait_for(3)
            await tasks.join()
            client = Redis.from_url(server.url)
            try:
                tickets = [k async for k in client.scan_iter(match="dari:order:*:ticket")]
                assert len(tickets) == 1 and await client.get(tickets[0]) == b"3"
                assert [k async for k in client.scan_iter(match="dari:order:*:parked")] == []
            finally:
                await client.aclose()
    assert [text for text, _, _ in recorder.delivered] == [f"재시작 중 질문 {n}" for n in range(3)]
    assert events.count("held") == events.count("recorded") == 3 and "unrecorded" not in events


async def test_messages_held_by_two_processes_are_recorded_in_arrival_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The process holding the later message sees Redis back first; it must still let the
    # earlier one, held by the other process, go first.
    monkeypatch.setattr(worker_module, "OUTAGE_HOLD", 0.2)
    monkeypatch.setattr(worker_module, "OUTAGE_SHORT", 60.0)
    monkeypatch.setattr(worker_module, "PARK_SETTLE", 3.0)  # however slow this machine is
    recorder = Recorder()
    async with (
        RedisServer() as server,
        running(server.url, "dari", "first", recorder, lease=60.0) as (first, first_tasks),
        running(server.url, "dari", "second", recorder, lease=60.0) as (second, second_tasks),
    ):
        await server.stop()
        assert await first.submit(job("먼저 보낸 질문"))
        assert await second.submit(job("나중에 보낸 질문"))
        second_parked = asyncio.Event()
        park, ping = second._queue.park, first._queue.ping

        async def parked(jobs: Sequence[Job]) -> None:
            await park(jobs)
            second_parked.set()

        async def late_ping() -> None:
            await second_parked.wait()  # the first process sees Redis back only after that
            await ping()

        monkeypatch.setattr(second._queue, "park", parked)
        monkeypatch.setattr(first._queue, "ping", late_ping)
        await server.start()
        await recorder.wait_for(2)
        await asyncio.gather(first_tasks.join(), second_tasks.join())
    assert [text for text, _, _ in recorder.delivered] == ["먼저 보낸 질문", "나중에 보낸 질문"]


async def test_once_held_messages_are_parked_new_ones_are_recorded_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not held behind them: under steady traffic the hold would never end (found in the soak).
    monkeypatch.setattr(worker_module, "OUTAGE_HOLD", 0.2)
    monkeypatch.setattr(worker_module, "OUTAGE_SHORT", 60.0)
    monkeypatch.setattr(worker_module, "PARK_SETTLE", 30.0)  # the held one stays parked meanwhile
    recorder, events = Recorder(), list[str]()
    async with RedisServer() as server:
        async with running(server.url, "dari", "steady", recorder, lease=60.0, events=events) as (worker, _):
            await server.stop()
            assert await worker.submit(job("장애 중 질문"))
            parked = asyncio.Event()
            park = worker._queue.park

            async def parking(jobs: Sequence[Job]) -> None:
                await park(jobs)
                parked.set()

            monkeypatch.setattr(worker._queue, "park", parking)
            await server.start()
            async with asyncio.timeout(10):
                await parked.wait()
                assert await worker.submit(job("복구 후 다른 대화", conversation="u2"))
                await recorder.wait_for(1)
            assert [text for text, _, _ in recorder.delivered] == ["복구 후 다른 대화"]
            assert events.count("held") == 1


class WriteRefusingQueue(LocalQueue):
    """A durable-looking queue that answers PING but refuses writes (Redis out of memory)."""

    durable = True

    async def put(self, job: Job, *, seen: Mapping[str, float] | None = None) -> Claim | None:
        raise StoreError("Redis job queue failed: OOM command not allowed when used memory > 'maxmemory'.")

    async def park(self, jobs: Sequence[Job]) -> None:
        raise StoreError("Redis job queue failed: OOM command not allowed when used memory > 'maxmemory'.")


async def test_a_message_is_held_at_most_so_long_even_when_redis_keeps_coming_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis answering PING but refusing every write looks back at each probe: the hold must
    # still end, for each message, OUTAGE_SHORT after it arrived.
    monkeypatch.setattr(worker_module, "OUTAGE_HOLD", 0.1)
    monkeypatch.setattr(worker_module, "OUTAGE_SHORT", 0.5)
    tasks, recorder, events = TaskSet(), Recorder(), list[str]()
    worker = Worker(tasks=tasks, name="oom", lease=60.0, order_wait=10.0, events=events.append)
    worker.add("test", recorder)
    worker.attach(WriteRefusingQueue())
    assert await worker.submit(job("메모리가 부족할 때 질문"))
    async with asyncio.timeout(5):
        await recorder.wait_for(1)
    await worker.stop(grace=1.0)
    await tasks.join()
    assert events == ["held", "unrecorded"]
    said = [r for r in caplog.records if "jobs cannot be recorded" in r.getMessage()]
    assert len(said) == 1, "once, not at every probe that finds Redis answering again"


async def test_held_messages_are_answered_here_when_the_service_stops_with_redis_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "OUTAGE_HOLD", 0.2)
    tasks, recorder = TaskSet(), Recorder()
    worker = Worker(tasks=tasks, name="cut-off", lease=60.0, order_wait=10.0)
    worker.add("test", recorder)
    queue = RedisQueue.from_url("redis://127.0.0.1:9/0", prefix="dari", consumer="cut-off", lease=60.0)
    worker.attach(queue)
    assert await worker.submit(job("질문"))
    assert recorder.delivered == []  # held
    await worker.stop(grace=5.0)
    await queue.close()
    assert [text for text, _, _ in recorder.delivered] == ["질문"]


class FlakyQueue(LocalQueue):
    """A durable-looking queue that is down while ``down`` is set; records renewals and takeovers."""

    durable = True

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.renewed: list[float] = []
        self.looked: list[float] = []
        self.failed: list[float] = []
        self.changed = asyncio.Condition()

    def _check(self) -> None:
        if self.down:
            self.failed.append(asyncio.get_running_loop().time())
            raise StoreError("Redis job queue failed: Connection refused.")

    async def _note(self, times: list[float]) -> None:
        async with self.changed:
            self.changed.notify_all()
            self._check()
            times.append(asyncio.get_running_loop().time())

    async def renew(self, claims: Sequence[Claim]) -> set[str]:
        await self._note(self.renewed)
        return {claim.entry for claim in claims}

    async def takeover(self, *, count: int) -> list[Claim]:
        await self._note(self.looked)
        return []

    async def ping(self) -> None:
        self._check()


async def test_after_an_outage_owners_renew_at_once_and_nobody_takes_over_for_a_lease() -> None:
    # During an outage nobody can renew, so every lease looks expired when Redis returns:
    # taking jobs over then would answer them twice.
    lease = 0.3
    queue, tasks = FlakyQueue(), TaskSet()
    worker = Worker(tasks=tasks, name="flaky", lease=lease, order_wait=10.0)
    worker.attach(queue)
    worker.start()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(10):
            async with queue.changed:
                await queue.changed.wait_for(lambda: bool(queue.looked))
            queue.down = True
            async with queue.changed:  # one of the worker's loops meets the outage
                await queue.changed.wait_for(lambda: bool(queue.failed))
            queue.down = False
            back_at = loop.time()
            looked_before = len(queue.looked)
            async with queue.changed:
                await queue.changed.wait_for(lambda: len(queue.looked) > looked_before)
    finally:
        await worker.stop(grace=1.0)
    renewed_after = [t for t in queue.renewed if t >= back_at]
    taken_after = [t for t in queue.looked if t >= back_at]
    assert renewed_after and taken_after
    assert renewed_after[0] < taken_after[0]
    assert taken_after[0] - queue.failed[-1] >= lease  # a whole lease after the last failure


async def test_a_busy_connection_pool_is_waited_for_not_taken_for_an_outage(redis_url: str) -> None:
    # Found by the soak with Teams mixed in: under load the jobs' pool stayed busy for 5 s, the
    # worker took "No connection available" for a Redis outage and ran messages without tickets.
    queue = open_queue(
        redis_url=redis_url, pool=2, prefix="p", name="n", lease=60.0, claim=claims_in(InMemoryStore())
    )
    try:
        assert isinstance(queue, RedisQueue)
        assert queue._client.connection_pool.timeout == QUEUE_POOL_WAIT >= 30  # type: ignore[attr-defined]
        assert queue._control.connection_pool.max_connections == CONTROL_POOL
        assert queue._control.connection_pool.timeout == QUEUE_POOL_WAIT  # type: ignore[attr-defined]
    finally:
        await queue.close()


async def test_failing_renewals_do_not_make_messages_go_unrecorded() -> None:
    # Found by the Teams soak: a busy process's renewals waited too long for a connection, the
    # worker declared the queue down, and messages it accepted ran unrecorded and died with it.
    queue, tasks, events = FlakyQueue(), TaskSet(), list[str]()
    worker = Worker(tasks=tasks, name="busy", lease=0.3, order_wait=10.0, events=events.append)
    worker.add("test", Recorder())
    worker.attach(queue)
    queue.down = True  # renew and takeover fail; recording a message still works
    worker.start()
    try:
        async with asyncio.timeout(10), queue.changed:
            await queue.changed.wait_for(lambda: len(queue.failed) >= 2)
        assert await worker.submit(job("바쁜 중 질문"))
        await tasks.join()
    finally:
        await worker.stop(grace=1.0)
    assert events == ["recorded"]


async def test_a_job_taken_over_meanwhile_stops_at_its_next_mark_and_is_left_to_the_other(
    redis_url: str, prefix: str, redis_client: Redis
) -> None:
    # The renewal would notice only a third of a lease later; the next mark notices at once,
    # before the answer goes on, and the job is not removed under its new owner.
    recorder, events = Recorder(), list[str]()
    recorder.hold = asyncio.Event()
    async with running(redis_url, prefix, "stalled", recorder, lease=60.0, events=events) as (worker, tasks):
        await worker.submit(job("질문"))
        await recorder.started.wait()
        [pending] = await redis_client.xpending_range(f"{prefix}:jobs", "dari", "-", "+", 10)
        await redis_client.xclaim(f"{prefix}:jobs", "dari", "other", 0, [pending["message_id"]], justid=True)
        recorder.hold.set()
        await tasks.join()
        assert worker.running == 0
    assert recorder.delivered == [], "stopped at the mark, before delivering"
    assert events == ["recorded", "lease_lost"]
    [still] = await redis_client.xpending_range(f"{prefix}:jobs", "dari", "-", "+", 10)
    assert still["consumer"] == b"other"
