"""The worker: runs jobs, keeps their leases, takes over orphans, hands jobs over on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from adapters.runtime import TaskSet
from adapters.worker import MAX_ATTEMPTS, Delivery, Worker
from core.jobs import Job, new_job
from core.memory.redis_jobs import RedisQueue
from core.types import ConversationKey, Inbound
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
    redis_url: str, prefix: str, name: str, deliverer: Recorder, *, lease: float = 0.6
) -> AsyncIterator[tuple[Worker, TaskSet]]:
    tasks = TaskSet()
    worker = Worker(tasks=tasks, name=name, lease=lease, order_wait=10.0)
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
    await dead.mark(claim, "slack:message:0", "1700000001.000100")
    await dead.close()  # the process dies: its job is never renewed
    recorder = Recorder()
    async with running(redis_url, prefix, "survivor", recorder):
        await recorder.wait_for(1)
    assert recorder.delivered == [("고아 질문", 2, {"slack:message:0": "1700000001.000100"})]


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
    await redis_client.hset(f"{prefix}:job:{{{claim.job.id}}}", "#attempt", MAX_ATTEMPTS - 1)
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
