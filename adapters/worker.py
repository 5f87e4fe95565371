"""The worker: runs accepted jobs through their door's deliverer, keeps them, takes over orphans.

Every process runs one. A door accepts a message, turns it into a ``Job`` and ``submit``s it:
the queue records it (durably with Redis) before the door acknowledges the platform, and the
job starts here at once. While it runs, its lease is renewed; a job whose process died is taken
over by another process's worker after the lease, and delivered there (the deliverer reads what
the first attempt did from ``Delivery.marks`` so that the user still gets one answer).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import os
import random
import socket
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from contextvars import Context
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from adapters.protection import BUSY_POOL_WAIT, redis_client
from adapters.runtime import TaskSet
from core.errors import StoreError
from core.jobs import Claim, Job, JobQueue
from core.jobs_local import ClaimSeen, LocalQueue
from core.logctx import conversation_id
from core.loops import Loop
from core.memory.base import Store
from core.memory.redis_jobs import RedisQueue

__all__ = [
    "WORKER",
    "Deliverer",
    "Delivery",
    "Worker",
    "claims_in",
    "open_queue",
    "order_wait",
    "process_name",
]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a job that took down this many processes is dropped, not passed on again
TAKEOVER_BATCH = 50
TAKEOVER_PAUSE = 0.5  # between batches while orphans are left: a dead process's backlog is spread out
CONTROL_POOL = 4  # connections for renewals, takeovers and turn checks, apart from the jobs' own
QUEUE_POOL_WAIT = BUSY_POOL_WAIT  # seconds a job's command waits for a free connection before it fails
OUTAGE_HOLD = 2.0  # how long a message waits for the queue to come back before it runs without it
OUTAGE_SHORT = 10.0  # an outage longer than this is not waited for: the acknowledgements stay quick
PROBE = (0.05, 1.0)  # the first and the longest pause between checks of a queue that stopped answering
PROBE_SHORT = 0.1  # the longest pause while messages still wait for the queue (OUTAGE_SHORT)
SAY_AGAIN_AFTER = 60.0  # seconds before another outage of the queue is logged as an error
PARK_SETTLE = 0.5  # after an outage, how long held messages wait for other processes to park theirs


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
        lost: called when the job turns out to be another process's now (the worker cancels
            this delivery).
    """

    claim: Claim
    queue: JobQueue
    marks: dict[str, str] = field(default_factory=dict)
    lost: Callable[[], None] = lambda: None

    @property
    def job(self) -> Job:
        return self.claim.job

    @property
    def taken_over(self) -> bool:
        """True when another process started this job and died."""
        return self.claim.attempt > 1

    async def mark(self, name: str, value: str) -> None:
        """Record what this delivery did (say, the id of a posted message) for a later attempt.

        When another process has taken the job over (this one stalled past the lease), this
        delivery is cancelled here, before it sends anything more: that process answers.
        """
        self.marks[name] = value
        try:
            held = await self.queue.mark(self.claim, name, value)
        except StoreError as error:
            log.warning("delivery mark not recorded: %s", error)
            return
        if not held:
            self.lost()
            await asyncio.sleep(0)  # the cancellation lands here


@dataclass(slots=True)
class _Held:
    """A message accepted while the queue was away, held until it can be recorded."""

    job: Job
    seen: dict[str, float]
    started: asyncio.Future[bool]
    context: Context  # its request's (log fields), for its job
    since: float  # loop time it was held at
    parked: bool = False  # announced in the queue (``JobQueue.park``)
    putting: bool = False  # being recorded now

    def start(self, started: bool) -> None:
        if not self.started.done():
            self.started.set_result(started)


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
        events: told of every job event ("recorded", "unrecorded", "held", "taken_over",
            "lease_lost", "dropped"), for the metrics.
    """

    def __init__(
        self,
        *,
        tasks: TaskSet,
        name: str,
        lease: float,
        order_wait: float,
        events: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self._event = events or (lambda _: None)
        self._tasks = tasks
        self._lease = lease
        self._order_wait = order_wait
        self._deliverers: dict[str, Deliverer] = {}
        self._queue: JobQueue = LocalQueue()
        self._fallback = LocalQueue()
        self._running: dict[str, tuple[Claim, JobQueue, asyncio.Task[None]]] = {}
        self._loops: list[Loop] = []
        self._down_since: float | None = None  # when the queue stopped answering, while it does not
        self._last_failure = -math.inf  # loop time of the queue's latest failure
        self._back = asyncio.Event()
        self._back.set()
        self._probe: Loop | None = None
        self._probe_pause = PROBE[0]
        self._stopping = False
        self._settling: set[str] = set()  # entries of answered jobs being removed from the queue
        self._orphans_left = False  # the last takeover filled its batch: look again soon
        self._said_at = -math.inf  # loop time the queue was last said to be down
        self._loud = True  # whether this outage was said (then its end is said too)
        self._held: list[_Held] = []  # messages accepted while the queue was away, in arrival order
        self._holding: asyncio.Task[None] | None = None

    @property
    def durable(self) -> bool:
        return self._queue.durable

    @property
    def running(self) -> int:
        return len(self._running)

    def add(self, door: str, deliverer: Deliverer) -> None:
        """Let jobs of ``door`` be answered by ``deliverer``."""
        self._deliverers[door] = deliverer

    def attach(self, queue: JobQueue, *, claim: ClaimSeen | None = None) -> None:
        """Record jobs in ``queue`` from now on (the in-process queue until then).

        ``claim`` (the store's ``claim``) dedupes messages when they cannot go to a durable
        queue, which claims them itself, with the job.
        """
        self._queue = queue
        if claim is not None:
            self._fallback = LocalQueue(claim=claim)

    def start(self) -> None:
        """Renew leases and look for orphaned jobs until ``stop`` (durable queues only).

        Call it once every door has added its deliverer: orphans are taken over at once.
        """
        if self._queue.durable and not self._loops:
            # Jitter, so that the processes of one deployment do not look for orphans in step.
            self._loops = [
                Loop(self._renew, every=self._lease / 3, name="jobs-renew"),
                Loop(
                    self._take_over,
                    every=self._takeover_pause,
                    name="jobs-takeover",
                    at_once=True,  # orphans left by a process that died before this one started
                ),
            ]

    async def submit(
        self, job: Job, *, seen: Mapping[str, float] | None = None, on_the_line: bool = False
    ) -> bool:
        """Claim the message's dedupe tokens (``seen``: token -> seconds), record ``job`` and start
        it here. Returns once the job is recorded; False, with nothing recorded, for a message
        seen before.

        When the durable queue cannot record it (Redis down), the message is held here until
        Redis returns (a restart or a failover is over in seconds), then recorded in its place
        among the conversation's messages, however many processes held some. It waits at most
        ``OUTAGE_HOLD`` for that before this returns True (the platform wants its
        acknowledgement), and it is held at most ``OUTAGE_SHORT``: then, and for messages
        accepted more than ``OUTAGE_SHORT`` into an outage, it runs without the queue, without durability and
        without its place among messages held by other processes: answering matters more than
        surviving a crash that has not happened. So does a message whose user waits for its
        answer on the line (``on_the_line``: a Kakao request without a callback), after
        ``OUTAGE_HOLD``.
        """
        loop = asyncio.get_running_loop()
        # Held messages not parked yet (Redis is back this instant): this one joins them. Parked
        # ones need no waiting for: the queue makes a later message give way to them.
        if self._down_since is None and all(one.parked for one in self._held):
            try:
                return self._start(await self._queue.put(job, seen=seen), self._queue)
            except StoreError as error:
                self._failed(error)
        if self._down_since is not None and loop.time() - self._down_since >= OUTAGE_SHORT:
            return self._start(await self._fallback.put(job, seen=seen), self._fallback)
        held = _Held(job, dict(seen or {}), loop.create_future(), contextvars.copy_context(), loop.time())
        self._held.append(held)
        self._event("held")
        if self._holding is None or self._holding.done():
            # In a context of its own: not the request's that happened to start it.
            self._holding = self._tasks.spawn(
                self._release_held(), name="jobs-held", context=contextvars.Context()
            )
        try:
            return await asyncio.wait_for(asyncio.shield(held.started), timeout=OUTAGE_HOLD)
        except TimeoutError:
            if not on_the_line:
                return True  # accepted: it is recorded, or run here, as soon as it can be
        if held in self._held and not held.putting:
            self._held.remove(held)  # run it now, for the user waiting on the line
            held.start(self._start(await self._fallback.put(job, seen=seen), self._fallback))
        return await held.started

    async def _release_held(self) -> None:
        # Rounds until nothing is held: wait for the queue; park what is held, so that every
        # process knows the arrival of every held message; give the other processes that held
        # some a moment (PARK_SETTLE) to notice the queue back and park theirs; put them, each
        # conversation's in arrival order (the queue makes later messages wait for parked ones).
        loop = asyncio.get_running_loop()
        while self._held:
            # Each message is held at most OUTAGE_SHORT (all of them when shutting down with the
            # queue away): a Redis that answers PING but refuses writes (out of memory) looks
            # back at every probe, and would otherwise hold them for good.
            now, away = loop.time(), self._down_since is not None
            late = [h for h in self._held if now - h.since >= OUTAGE_SHORT or (away and self._stopping)]
            if late:
                self._held = [h for h in self._held if h not in late]
                for one in late:  # answered here, in arrival order, without the queue
                    try:
                        claim = await self._fallback.put(one.job, seen=one.seen)
                        one.start(self._start(claim, self._fallback, context=one.context))
                    except Exception:
                        log.exception("a held message could not be started", extra={"job": one.job.id})
                        one.start(False)
                continue
            if away:
                left = self._held[0].since + OUTAGE_SHORT - now
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._back.wait(), timeout=min(left, PROBE_SHORT))
                continue
            fresh = [one for one in self._held if not one.parked]
            if fresh:
                try:
                    await self._queue.park([one.job for one in fresh])
                except StoreError as error:
                    self._failed(error)
                    continue
                for one in fresh:
                    one.parked = True
                await asyncio.sleep(PARK_SETTLE)
            conversations: dict[str, list[_Held]] = {}
            parked = [one for one in self._held if one.parked]
            for one in parked:
                conversations.setdefault(one.job.inbound.key.id, []).append(one)
            await asyncio.gather(*(self._put_held(group) for group in conversations.values()))
            if recorded := sum(one.started.done() for one in parked):
                log.warning("%d messages held while jobs could not be recorded are recorded now", recorded)

    async def _put_held(self, held: list[_Held]) -> None:
        for one in held:
            if one.started.done():
                continue  # started meanwhile without the queue (its user waits on the line)
            one.putting = True
            try:
                claim = await self._queue.put(one.job, seen=one.seen)
            except StoreError as error:
                one.putting = False
                self._failed(error)  # away again: the rest stay held
                return
            self._held.remove(one)
            one.start(self._start(claim, self._queue, context=one.context))

    def _start(self, claim: Claim | None, queue: JobQueue, *, context: Context | None = None) -> bool:
        if claim is None:
            return False
        if self._queue.durable:
            self._event("recorded" if queue is self._queue else "unrecorded")
        self._run(claim, queue, context=context)
        return True

    def _missed(self, error: StoreError) -> None:
        # A renewal or a look for orphans failed: no takeovers for a lease (``_may_take_over``).
        # Only a message that cannot be recorded makes the queue count as down: these calls
        # share a small pool that a busy process can keep waiting, which is load, not an outage
        # (the Teams soak lost messages that ran unrecorded in a process killed moments later).
        self._last_failure = asyncio.get_running_loop().time()
        log.debug("job queue call failed: %s", error)

    def _failed(self, error: StoreError) -> None:
        now = asyncio.get_running_loop().time()
        self._last_failure = now
        if self._down_since is not None:
            return  # said once per outage, not once per message or per loop round
        # A Redis that answers PING but refuses writes comes and goes every probe: said once a minute.
        self._loud = now - self._said_at >= SAY_AGAIN_AFTER
        if self._loud:
            self._said_at = now
        log.log(
            logging.ERROR if self._loud else logging.DEBUG,
            "jobs cannot be recorded (%s): answering without durability until it returns",
            error,
        )
        self._down_since = now
        self._back.clear()
        self._probe_pause = PROBE[0]
        self._probe = Loop(self._probe_round, every=lambda: self._probe_pause, name="jobs-probe")

    async def _probe_round(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            await self._queue.ping()
        except StoreError:
            self._last_failure = loop.time()
            # Messages wait up to OUTAGE_HOLD for the queue in the first OUTAGE_SHORT s: notice
            # its return within a tenth of a second then (with pauses grown to 0.8 s, messages
            # could give up on a queue that was back, and run without their place in order).
            short = loop.time() - (self._down_since or loop.time()) < OUTAGE_SHORT
            self._probe_pause = min(self._probe_pause * 2, PROBE_SHORT if short else PROBE[1])
            return True  # Redis is still away: ask again soon
        if self._down_since is not None:
            level = logging.WARNING if self._loud else logging.DEBUG
            log.log(level, "jobs are recorded again after %.1f s", loop.time() - self._down_since)
        self._down_since = None
        self._back.set()
        await self._renew()  # at once: nobody could renew during the outage
        return False

    def _run(self, claim: Claim, queue: JobQueue, *, context: Context | None = None) -> None:
        key = claim.entry or claim.job.id
        name = f"job {claim.job.door} {claim.job.id}"
        task = self._tasks.spawn(self._deliver(claim, queue), name=name, context=context)
        self._running[key] = (claim, queue, task)
        task.add_done_callback(lambda _: self._running.pop(key, None))

    async def _deliver(self, claim: Claim, queue: JobQueue) -> None:
        job = claim.job
        conversation_id.set(job.inbound.key.id)  # on every log line of the job (its own task)
        deliverer = self._deliverers.get(job.door)
        async with queue.turn(claim, wait=self._order_wait):
            if deliverer is None:
                log.error("no deliverer for %s jobs here: job dropped", job.door, extra={"job": job.id})
            else:
                delivery = Delivery(
                    claim=claim, queue=queue, marks=dict(claim.marks), lost=lambda: self._lose(claim)
                )
                try:
                    await deliverer.deliver(delivery)
                except Exception:
                    # A bug or a broken store. Running it again would most likely fail the same way.
                    log.exception("job failed", extra={"job": job.id, "door": job.door})
            self._settling.add(claim.entry)  # being removed: no longer renewed, not lost either
            try:
                await queue.done(claim)  # inside the turn: it passes the turn on
            except StoreError as error:
                log.warning("job answered but not cleared (%s): it may be answered again", error)
            finally:
                self._settling.discard(claim.entry)

    async def _renew(self) -> None:
        mine = [
            (c, t)
            for c, q, t in self._running.values()
            if q is self._queue and c.entry and c.entry not in self._settling
        ]
        try:
            held = await self._queue.renew([c for c, _ in mine])
        except StoreError as error:
            self._missed(error)
            return
        for claim, task in mine:
            if claim.entry not in held and not task.done() and claim.entry not in self._settling:
                self._lose(claim)

    def _lose(self, claim: Claim) -> None:
        # Another process took the job over (this one stalled past the lease): it answers.
        running = self._running.get(claim.entry or claim.job.id)
        if running is None or running[2].done():
            return
        log.warning("job lease lost; stopping here", extra={"job": claim.job.id})
        self._event("lease_lost")
        running[2].cancel()

    def _may_take_over(self) -> bool:
        # Right after an outage every lease looks expired, as nobody could renew: wait a lease
        # more, so that the processes still running their jobs renew them first.
        elapsed = asyncio.get_running_loop().time() - self._last_failure
        return self._down_since is None and elapsed >= self._lease

    def _takeover_pause(self) -> float:
        if self._orphans_left:
            return TAKEOVER_PAUSE
        return self._lease / 2 * random.uniform(0.5, 1.0)

    async def _take_over(self) -> None:
        # One batch per round: taking a dead process's hundreds of jobs at once stalled the
        # survivors' event loops past the lease in the soak, so that their own running jobs
        # were taken over too.
        self._orphans_left = False
        if not self._may_take_over() or self._stopping:
            return
        try:
            claims = await self._queue.takeover(count=TAKEOVER_BATCH)
        except StoreError as error:
            self._missed(error)
            return
        for claim in claims:
            self._adopt(claim)
        self._orphans_left = len(claims) == TAKEOVER_BATCH

    def _adopt(self, claim: Claim) -> None:
        job = claim.job
        if claim.entry in self._running:
            return  # ours, still running: the renewal was late, not the process
        if claim.attempt > MAX_ATTEMPTS:
            log.error("job dropped after %d attempts", claim.attempt - 1, extra={"job": job.id})
            self._event("dropped")
            self._tasks.spawn(self._queue.done(claim), name="job drop")
            return
        log.warning(
            "taking over a job from a process that stopped",
            extra={"job": job.id, "door": job.door, "origin": job.origin, "attempt": claim.attempt},
        )
        self._event("taken_over")
        self._run(claim, self._queue)

    async def stop(self, grace: float) -> None:
        """Take no more orphans; start held messages; let running jobs finish for ``grace`` s;
        give the rest back."""
        self._stopping = True
        loops = [*self._loops, *([self._probe] if self._probe else [])]
        await asyncio.gather(*(loop.stop() for loop in loops))
        self._loops, self._probe = [], None
        loop_time = asyncio.get_running_loop().time
        deadline = loop_time() + grace
        if self._holding is not None:
            # Held messages are recorded now, or (the queue still away) started here.
            await asyncio.wait({self._holding}, timeout=grace)
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


def claims_in(store: Store) -> ClaimSeen:
    """Dedupe claims in ``store`` (for the in-process queues; Redis claims with the job)."""

    async def claim(token: str, ttl: float) -> bool:
        return await store.claim(token, ttl=ttl)

    return claim


def open_queue(
    *, redis_url: str | None, pool: int, prefix: str, name: str, lease: float, claim: ClaimSeen
) -> JobQueue:
    """The Redis Stream queue when Redis is set (shared, durable), else the in-process queue
    (which dedupes through ``claim``, the store's)."""
    if not redis_url:
        return LocalQueue(claim=claim)
    # Short socket timeouts: a vanished Redis must not hold an acknowledgement for minutes.
    # A pool that stays busy is load, not an outage: the jobs wait for a connection rather than
    # run without their ticket (the Teams soak saw "No connection available" after 5 s).
    client = redis_client(redis_url, pool=pool, wait=QUEUE_POOL_WAIT)
    control = redis_client(redis_url, pool=CONTROL_POOL, wait=QUEUE_POOL_WAIT)
    return RedisQueue(client=client, control=control, prefix=prefix, consumer=name, lease=lease)


def order_wait(*, lease: float, llm_timeout: float, llm_attempts: int) -> float:
    """How long a job waits for an earlier job of its conversation: long enough for that job to
    be taken over after a crash and answered, so that order holds; bounded, so that a job lost
    in a crash between its ticket and its record cannot stall its conversation for good."""
    return 2 * lease + llm_timeout * llm_attempts + 30.0
