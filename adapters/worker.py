"""The worker: runs accepted jobs through their door's deliverer, keeps them, takes over orphans.

Every process runs one. A door accepts a message, turns it into a ``Job`` and ``submit``s it:
the queue records it (durably with Redis) before the door acknowledges the platform, and the
job starts here at once. While it runs, its lease is renewed; a job whose process died is taken
over by another process's worker after the lease, and delivered there (the deliverer reads what
the first attempt did from ``Delivery.marks`` so that the user still gets one answer).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from redis.asyncio import Redis

from adapters.runtime import TaskSet
from core.errors import StoreError
from core.jobs import Claim, Job, JobQueue
from core.jobs_local import LocalQueue
from core.memory.redis_jobs import RedisQueue

__all__ = ["WORKER", "Deliverer", "Delivery", "Worker", "open_queue", "order_wait", "process_name"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a job that took down this many processes is dropped, not passed on again
TAKEOVER_BATCH = 50
RETRY_AFTER = 5.0  # after the queue failed, seconds before a message tries it again (acks stay quick)


def process_name() -> str:
    """A name for this process in the consumer group, unique per start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(slots=True)
class Delivery:
    """One attempt at delivering a job's answer.

    Attributes:
        claim: the job and what earlier attempts marked.
        queue: the queue holding the job.
        marks: the marks so far, this attempt's included.
    """

    claim: Claim
    queue: JobQueue
    marks: dict[str, str] = field(default_factory=dict)

    @property
    def job(self) -> Job:
        return self.claim.job

    @property
    def taken_over(self) -> bool:
        """True when another process started this job and died."""
        return self.claim.attempt > 1

    async def mark(self, name: str, value: str) -> None:
        """Record what this delivery did (say, the id of a posted message) for a later attempt."""
        self.marks[name] = value
        try:
            await self.queue.mark(self.claim, name, value)
        except StoreError as error:
            log.warning("delivery mark not recorded: %s", error)


class Deliverer(Protocol):
    """A door's way of answering a job: the platform answer, from any process."""

    async def deliver(self, delivery: Delivery) -> None: ...


class Worker:
    """Runs jobs on the service's task set and keeps them leased until they are done.

    Args:
        tasks: where jobs run (drained on shutdown like every background answer).
        name: this process's name in the queue.
        lease: seconds a job stays this process's without a renewal.
        order_wait: the longest a job waits for an earlier job of its conversation.
    """

    def __init__(self, *, tasks: TaskSet, name: str, lease: float, order_wait: float) -> None:
        self.name = name
        self._tasks = tasks
        self._lease = lease
        self._order_wait = order_wait
        self._deliverers: dict[str, Deliverer] = {}
        self._queue: JobQueue = LocalQueue()
        self._fallback = LocalQueue()
        self._running: dict[str, tuple[Claim, JobQueue, asyncio.Task[None]]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._degraded = False
        self._retry_at = 0.0

    @property
    def durable(self) -> bool:
        return self._queue.durable

    @property
    def running(self) -> int:
        return len(self._running)

    def add(self, door: str, deliverer: Deliverer) -> None:
        """Let jobs of ``door`` be answered by ``deliverer``."""
        self._deliverers[door] = deliverer

    def attach(self, queue: JobQueue) -> None:
        """Record jobs in ``queue`` from now on (the in-process queue until then)."""
        self._queue = queue

    def start(self) -> None:
        """Renew leases and look for orphaned jobs until ``stop`` (durable queues only).

        Call it once every door has added its deliverer: orphans are taken over at once.
        """
        if self._queue.durable and not self._loops:
            self._loops = [
                asyncio.create_task(self._renewing(), name="jobs-renew"),
                asyncio.create_task(self._taking_over(), name="jobs-takeover"),
            ]

    async def submit(self, job: Job) -> None:
        """Record ``job`` and start it here. Returns once the job is recorded.

        When the durable queue cannot record it (Redis down), the job runs anyway, without
        durability: answering matters more than surviving a crash that has not happened.
        """
        queue = self._queue
        if self._degraded and asyncio.get_running_loop().time() < self._retry_at:
            queue = self._fallback
        try:
            claim = await queue.put(job)
        except StoreError as error:
            self._failed(error)
            queue = self._fallback
            claim = await queue.put(job)
        else:
            if queue is self._queue:
                self._recovered()
        self._run(claim, queue)

    def _failed(self, error: StoreError) -> None:
        # Said once per outage, not once per message or per loop round.
        if not self._degraded:
            log.error("jobs cannot be recorded (%s): answering without durability until it returns", error)
        self._degraded = True
        self._retry_at = asyncio.get_running_loop().time() + RETRY_AFTER

    def _recovered(self) -> None:
        if self._degraded and self._queue.durable:
            log.info("jobs are recorded again")
        self._degraded = False

    def _run(self, claim: Claim, queue: JobQueue) -> None:
        key = claim.entry or claim.job.id
        task = self._tasks.spawn(self._deliver(claim, queue), name=f"job {claim.job.door} {claim.job.id}")
        self._running[key] = (claim, queue, task)
        task.add_done_callback(lambda _: self._running.pop(key, None))

    async def _deliver(self, claim: Claim, queue: JobQueue) -> None:
        job = claim.job
        deliverer = self._deliverers.get(job.door)
        if deliverer is None:
            log.error("no deliverer for %s jobs here: job dropped", job.door, extra={"job": job.id})
        else:
            async with queue.turn(claim, wait=self._order_wait):
                try:
                    await deliverer.deliver(Delivery(claim=claim, queue=queue, marks=dict(claim.marks)))
                except Exception:
                    # A bug or a broken store. Running it again would most likely fail the same way.
                    log.exception("job failed", extra={"job": job.id, "door": job.door})
        try:
            await queue.done(claim)
        except StoreError as error:
            log.warning("job answered but not cleared (%s): it may be answered again", error)

    async def _renewing(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            mine = [(c, t) for c, q, t in self._running.values() if q is self._queue and c.entry]
            try:
                held = await self._queue.renew([c for c, _ in mine])
            except StoreError as error:
                self._failed(error)
                continue
            for claim, task in mine:
                if claim.entry not in held and not task.done():
                    # Another process took it over (this one stalled past the lease): it answers.
                    log.warning("job lease lost; stopping here", extra={"job": claim.job.id})
                    task.cancel()

    async def _taking_over(self) -> None:
        while True:
            try:
                claims = await self._queue.takeover(count=TAKEOVER_BATCH)
            except StoreError as error:
                self._failed(error)
                claims = []
            else:
                self._recovered()
            for claim in claims:
                self._adopt(claim)
            if len(claims) < TAKEOVER_BATCH:
                # Jitter, so that the processes of one deployment do not poll in step.
                await asyncio.sleep(self._lease / 2 * random.uniform(0.5, 1.0))

    def _adopt(self, claim: Claim) -> None:
        job = claim.job
        if claim.entry in self._running:
            return  # ours, still running: the renewal was late, not the process
        if claim.attempt > MAX_ATTEMPTS:
            log.error("job dropped after %d attempts", claim.attempt - 1, extra={"job": job.id})
            self._tasks.spawn(self._queue.done(claim), name="job drop")
            return
        log.warning(
            "taking over a job from a process that stopped",
            extra={"job": job.id, "door": job.door, "origin": job.origin, "attempt": claim.attempt},
        )
        self._run(claim, self._queue)

    async def stop(self, grace: float) -> None:
        """Take no more orphans; let running jobs finish for ``grace`` s; give the rest back."""
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        loop_time = asyncio.get_running_loop().time
        deadline = loop_time() + grace
        while self._running and (left := deadline - loop_time()) > 0:
            # Jobs submitted meanwhile (requests still in flight) are waited for too.
            await asyncio.wait({t for _, _, t in self._running.values()}, timeout=left)
        late = list(self._running.values())
        if not late:
            return
        log.warning("%d jobs unfinished at shutdown: handing them over", len(late))
        try:
            await self._queue.release([c for c, q, _ in late if q is self._queue and c.entry])
        except StoreError as error:
            log.warning("unfinished jobs not handed over (%s): taken over after the lease", error)
        for _, _, task in late:
            task.cancel()
        await asyncio.gather(*(t for _, _, t in late), return_exceptions=True)


WORKER = web.AppKey("worker", Worker)


def open_queue(*, redis_url: str | None, prefix: str, name: str, lease: float) -> JobQueue:
    """The Redis Stream queue when Redis is set (shared, durable), else the in-process queue."""
    if not redis_url:
        return LocalQueue()
    # Short socket timeouts: a vanished Redis must not hold an acknowledgement for minutes.
    client = Redis.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=10.0)
    return RedisQueue(client=client, prefix=prefix, consumer=name, lease=lease)


def order_wait(*, lease: float, llm_timeout: float, llm_attempts: int) -> float:
    """How long a job waits for an earlier job of its conversation: long enough for that job to
    be taken over after a crash and answered, so that order holds; bounded, so that a job lost
    in a crash between its ticket and its record cannot stall its conversation for good."""
    return 2 * lease + llm_timeout * llm_attempts + 30.0
