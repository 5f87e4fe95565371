"""The durable job queue: one Redis Stream, one consumer group, tickets for order per conversation.

Keys (documented with the rest in ``core/memory/redis.py``)::

    <p>:jobs                          stream of {"job": JSON, "ticket": n}; consumer group "dari",
                                      one consumer per process
    <p>:seen:{<p>:jobs}:<sha>         a message's dedupe mark (the store's, core/memory/redis.py)
    <p>:job:{<p>:jobs}:<job id>       hash: delivery marks of a job and "#attempt"; deleted when done
    <p>:put:{<p>:jobs}:<job id>       "<entry> <ticket>" until the job is done (at most a minute), so
                                      that a put run again (its reply lost) records the job once
    <p>:order:{<p>:jobs}:<sha>:ticket integer, the last ticket given to a job of the conversation
    <p>:order:{<p>:jobs}:<sha>:served integer, the highest ticket whose job is done
    <p>:order:{<p>:jobs}:<sha>:parked sorted set: ids of the conversation's jobs held through an
                                      outage by some process, scored by arrival (``park``)
    <p>:order:{<p>:jobs}:<sha>:queued sorted set: the tickets of the conversation's jobs in the
                                      queue (put, not done yet)

The order keys and the marks share the stream's Cluster slot (their hash tag is the stream's
name), so that one script gives a job its ticket and adds it, one script marks it served and
removes it, and one writes a mark only while the writer still holds the job: a ticket never
exists without its job, a job is never gone with its turn still held, whatever fails between two
commands, and a process that stalled past its lease learns at its next mark that another process
answers now (it stops before sending more).

The accepting process takes its own job in the same script that adds it (XADD, then
XREADGROUP ">" as itself), so a job starts at once where it was accepted, and no other process
reads it unless it is taken over: a process renews its jobs' idle time (XCLAIM ... JUSTID) well
within the lease, and every process XAUTOCLAIMs entries idle for longer than the lease.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
    suppress,
)
from dataclasses import replace
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from core.errors import StoreError
from core.jobs import Claim, Job, dump_job, load_job
from core.loops import Loop
from core.memory.base import seen_digest
from core.memory.redis_codec import Keys

__all__ = ["GROUP", "RedisQueue"]

_T = TypeVar("_T")

log = logging.getLogger(__name__)

GROUP = "dari"
MAX_LENGTH = 100_000  # entries kept (approximately); only unanswered jobs stay in the stream
STATE_TTL = 86400.0  # delivery marks outlive any lease and retry
TICKET_TTL = 3 * 86400.0  # like dedupe marks: a conversation idle this long starts again at 1
OUTAGE_WAIT = 5.0  # how long a job waits for an unreachable Redis to tell it its turn
SETTLE_WAIT = 60.0  # how long an answered job keeps trying to be marked done through an outage
MARK_WAIT = 5.0  # how long a delivery mark is tried through an outage before the answer goes on
PARK_WAIT = 1.5  # how long a message gives way to an earlier parked one whose process is silent
PARK_POLL = 0.05  # seconds between looks at whether the earlier parked message was recorded
PARK_TTL = 30.0  # a parked set outlives its last job this long (a process that died parking)
PUT_TTL = 60.0  # how long a put remembers its record, for a run again after a lost reply
_POLL = (0.02, 0.5)  # the first and the longest pause between tries through an outage
WATCH_EVERY = 0.05  # seconds between reads of the turns that jobs of this process wait for
ORDER_PATIENCE = 5  # a turn waits up to this many times its wait while an earlier job is queued
_ATTEMPT = "#attempt"
PRUNE_EVERY = 600.0  # seconds between looks for consumers of processes long gone
GONE_AFTER = 3600.0  # a consumer idle this long, holding nothing, is forgotten

# A put whose reply was lost (the connection closed under it) and that is run again finds its
# own record (KEYS[6]: "<entry> <ticket>") and returns it: the job is recorded once.
# Else give way to a message of the conversation that arrived earlier and is parked (held
# through a Redis outage by some process, see ``park``): 0, nothing written, unless ARGV[8]
# forces it. Then claim the message's dedupe tokens (KEYS[7..], nothing is written when one was
# claimed before), give the job the next ticket of its conversation (noted among its queued
# tickets, KEYS[5]), add it and take it as this consumer, all at once: nobody else can read it
# first, no ticket is given without its job, and a message is never marked seen without being
# queued (a process killed in between would lose it for good).
_PUT = """
local again = redis.call('GET', KEYS[6])
if again then
  local entry, ticket = string.match(again, '(%S+) (%S+)')
  return {entry, tonumber(ticket)}
end
if ARGV[8] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[7])
else
  local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if first[1] and first[1] ~= ARGV[6] and tonumber(first[2]) < tonumber(ARGV[7]) then return 0 end
end
redis.call('ZREM', KEYS[4], ARGV[6])
for i = 7, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return false end
end
for i = 7, #KEYS do
  redis.call('SET', KEYS[i], '1', 'PX', ARGV[i + 3])
end
local ticket = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[5], ticket, ticket)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[5], ARGV[4])
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'job', ARGV[5], 'ticket', ticket)
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if not read or read[1][2][1][1] ~= id then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'FORCE', 'JUSTID')
end
redis.call('SET', KEYS[6], id .. ' ' .. ticket, 'PX', ARGV[9])
return {id, ticket}
"""

# Park jobs held through an outage: KEYS[i] the parked set of ARGV[2i]'s conversation, scored by
# its arrival (ARGV[2i + 1]); ARGV[1] how long a set outlives its last parked job.
_PARK = """
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2 * i + 1], ARGV[2 * i])
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
"""

# The job is answered: pass its conversation's turn on and remove it with its marks, atomically.
_DONE = """
if tonumber(ARGV[2]) > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
if KEYS[4] then redis.call('ZREM', KEYS[4], ARGV[2]) end
if KEYS[5] then redis.call('DEL', KEYS[5]) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[4])
redis.call('XDEL', KEYS[1], ARGV[4])
if KEYS[3] then redis.call('DEL', KEYS[3]) end
"""

# Record a delivery mark, if this consumer still holds the job's entry: 1, else 0 (taken over).
_MARK = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not pending[1] or pending[1][2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[5], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""

# Reset the idle time of entries this consumer still owns (renew: 0; release: the lease).
_HOLD = """
local held = {}
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    held[#held + 1] = ARGV[i]
  end
end
return held
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RedisError as error:
        raise StoreError(f"Redis job queue failed: {error}") from error


class RedisQueue:
    """Jobs in a Redis Stream, shared by every process on the same Redis and prefix.

    Args:
        client: owned: ``close`` closes it.
        control: owned too: a client of its own for lease renewals, takeovers and turn
            checks, so that they never wait behind the jobs' own traffic for a connection
            (late renewals let other processes take running jobs over); ``client`` if None.
        prefix: the store's key prefix.
        consumer: this process's name in the consumer group (unique per process start).
        lease: seconds after which a job its process did not renew may be taken over.
    """

    durable = True

    def __init__(
        self, *, client: Redis, prefix: str, consumer: str, lease: float, control: Redis | None = None
    ) -> None:
        self._client = client
        self._control = control or client
        self._prefix = prefix
        self._keys = Keys(prefix)
        self._stream = self._keys.jobs
        self._consumer = consumer
        self._lease = lease
        self._cursor = "0-0"
        self._put = client.register_script(_PUT)
        self._park = client.register_script(_PARK)
        self._hold = self._control.register_script(_HOLD)
        self._done = client.register_script(_DONE)
        self._mark = client.register_script(_MARK)
        self._turns = _Turns(self._read_served, self._queued_before)
        self._pruned_at = -math.inf  # the first takeover looks at once
        self._server = ""  # the run id of the Redis server last seen
        self._calm_until = -math.inf  # no takeovers before this loop time (Redis restarted)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, consumer: str, lease: float) -> RedisQueue:
        return cls(client=Redis.from_url(url), prefix=prefix, consumer=consumer, lease=lease)

    def _state(self, job_id: str) -> str:
        return self._keys.job(job_id)

    def _put_key(self, job_id: str) -> str:
        return f"{self._prefix}:put:{{{self._stream}}}:{job_id}"

    def _conv(self, conversation: str, part: str) -> str:
        # Hashed like dedupe marks: a conversation id names a person (a Kakao chat is its user),
        # and these counters outlive an erasure. The stream's name is their hash tag (see above).
        return f"{self._prefix}:order:{{{self._stream}}}:{seen_digest(conversation)}:{part}"

    async def put(self, job: Job, *, seen: Mapping[str, float] | None = None) -> Claim | None:
        conv = job.inbound.key.id
        tokens = dict(seen or {})
        keys = [
            self._stream,
            self._conv(conv, "ticket"),
            self._conv(conv, "served"),
            self._conv(conv, "parked"),
            self._conv(conv, "queued"),
            self._put_key(job.id),
            *(self._keys.seen(token) for token in tokens),
        ]
        args: list[str | int | float] = [
            GROUP,
            self._consumer,
            MAX_LENGTH,
            _ms(TICKET_TTL),
            dump_job(job),
            job.id,
            job.accepted_at,
            0,
            _ms(PUT_TTL),
            *(_ms(ttl) for ttl in tokens.values()),
        ]
        loop = asyncio.get_running_loop()
        until = loop.time() + PARK_WAIT
        with _errors():
            while (put := await self._put(keys=keys, args=args)) == 0:
                # An earlier message of the conversation, held through an outage, is parked:
                # its process records it in a moment. Silent past PARK_WAIT, it is not waited for.
                if loop.time() >= until:
                    log.warning(
                        "an earlier message held through an outage is still not recorded after %.1f s:"
                        " recording a later one of its conversation first",
                        PARK_WAIT,
                    )
                    args[7] = 1
                else:
                    await asyncio.sleep(PARK_POLL)
        if not put:
            return None  # seen before: a redelivery
        entry, ticket = put
        return Claim(job=replace(job, ticket=int(ticket)), entry=_text(entry))

    async def park(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        keys = [self._conv(job.inbound.key.id, "parked") for job in jobs]
        args: list[str | int | float] = [_ms(PARK_TTL)]
        for job in jobs:
            args += [job.id, job.accepted_at]
        with _errors():
            await self._park(keys=keys, args=args)

    async def renew(self, claims: Sequence[Claim]) -> set[str]:
        return await self._keep(claims, idle=0)

    async def release(self, claims: Sequence[Claim]) -> None:
        # Idle for a whole lease already: the next XAUTOCLAIM anywhere takes them.
        await self._keep(claims, idle=_ms(self._lease))

    async def _keep(self, claims: Sequence[Claim], *, idle: int) -> set[str]:
        if not claims:
            return set()
        with _errors():
            args: list[str | int] = [GROUP, self._consumer, idle, *(c.entry for c in claims)]
            held = await self._hold(keys=[self._stream], args=args)
        return {_text(entry) for entry in held}

    async def takeover(self, *, count: int) -> list[Claim]:
        with _errors():
            if await self._restarted():
                return []
            try:
                cursor, entries, *rest = await self._control.xautoclaim(
                    self._stream, GROUP, self._consumer, _ms(self._lease), self._cursor, count=count
                )
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                return []  # no job was ever put on this prefix
            self._cursor = _text(cursor)
            if rest and rest[0]:
                log.error("%d unanswered jobs were dropped from a full queue", len(rest[0]))
            claims = [claim for claim in [await self._claimed(e, f) for e, f in entries] if claim]
            await self._prune()
        return claims

    async def _restarted(self) -> bool:
        """True within a lease of a Redis restart or failover (a new server run id).

        Nobody could renew a lease while Redis was away, so every running job looks orphaned
        right after: the processes running them need a lease to renew them first. A process
        that happened not to call Redis during a short outage sees it here (the soak took over
        answered jobs whose removal waited for Redis to load its data, and answered them twice).
        """
        try:
            info = await self._control.info("server", "persistence")
        except ResponseError:
            return False  # INFO renamed or refused (some managed Redis): no way to tell
        now = asyncio.get_running_loop().time()
        server, uptime = str(info.get("run_id", "")), float(info.get("uptime_in_seconds", math.inf))
        if info.get("loading"):
            # Still reading its data: nothing can be renewed yet. A lease from when it is done.
            self._calm_until = now + self._lease
        elif server != self._server:
            # Changed under this process (a restart, a failover): a lease from now. At the
            # first look: a lease from the server's start.
            since = 0.0 if self._server else min(uptime, self._lease)
            self._calm_until = max(self._calm_until, now + self._lease - since)
        self._server = server
        return now < self._calm_until

    async def _prune(self) -> None:
        # Every process start adds a consumer to the group; forget those of processes long gone.
        now = asyncio.get_running_loop().time()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        for consumer in await self._client.xinfo_consumers(self._stream, GROUP):
            name = _text(consumer["name"])
            if name != self._consumer and not consumer["pending"] and consumer["idle"] > GONE_AFTER * 1000:
                await self._client.xgroup_delconsumer(self._stream, GROUP, name)

    async def _claimed(self, entry: bytes, fields: dict[bytes, bytes]) -> Claim | None:
        fields = fields or {}
        ticket = fields.get(b"ticket", b"")
        try:
            job = load_job(fields.get(b"job") or b"")
            if ticket:
                job = replace(job, ticket=int(ticket))
        except ValueError as error:
            log.error("dropping an unreadable job: %s", error)
            await self._done(keys=[self._stream, self._stream], args=[GROUP, 0, 1, _text(entry)])
            return None
        state = self._state(job.id)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hincrby(state, _ATTEMPT, 1)
            pipe.pexpire(state, _ms(STATE_TTL))
            pipe.hgetall(state)
            attempts, _, stored = await pipe.execute()
        marks = {_text(k): _text(v) for k, v in stored.items() if _text(k) != _ATTEMPT}
        return Claim(job=job, entry=_text(entry), attempt=int(attempts) + 1, marks=marks)

    async def done(self, claim: Claim) -> None:
        # Called inside the job's turn, so the next job of the conversation starts as this one
        # is removed. Kept trying through a restart of Redis: a job answered but not removed would
        # hold its conversation back until taken over, and be delivered again then.
        job = claim.job
        conv = job.inbound.key.id
        keys = [
            self._stream,
            self._conv(conv, "served"),
            self._state(job.id),
            self._conv(conv, "queued"),
            self._put_key(job.id),
        ]
        args: list[str | int] = [GROUP, job.ticket, _ms(TICKET_TTL), claim.entry]
        await _through_outage(lambda: self._done(keys=keys, args=args), wait=SETTLE_WAIT)
        self._turns.advance(job.inbound.key.id, job.ticket)  # a job waiting here starts at once

    async def mark(self, claim: Claim, name: str, value: str) -> bool:
        # Tried through a Redis restart: an unrecorded mark is what makes a takeover answer twice.
        keys = [self._stream, self._state(claim.job.id)]
        args: list[str | int] = [GROUP, self._consumer, claim.entry, _ms(STATE_TTL), name, value]
        return bool(await _through_outage(lambda: self._mark(keys=keys, args=args), wait=MARK_WAIT))

    def turn(self, claim: Claim, *, wait: float) -> AbstractAsyncContextManager[None]:
        # Jobs put before tickets shared the stream's slot carry none: they keep no order.
        if claim.job.ticket <= 0:
            return nullcontext()
        return self._turn(claim.job.inbound.key.id, claim.job.ticket, wait)

    @asynccontextmanager
    async def _turn(self, conv: str, ticket: int, wait: float) -> AsyncIterator[None]:
        try:
            with _errors():
                served = int(await self._client.get(self._conv(conv, "served")) or 0)
        except StoreError:
            served = -1  # unknown: the watcher reads it again, and knows how long to wait for Redis
        if served < ticket - 1:
            await self._turns.wait(conv, ticket, wait=wait)
        # ``done`` passes the turn on. Cancelled (shutdown, lease lost), the job is not done:
        # whoever takes it over passes the turn on, and later messages of the conversation wait.
        yield

    async def _queued_before(self, conversation: str, ticket: int) -> bool:
        """Whether a job of the conversation with an earlier ticket is still in the queue."""
        with _errors():
            first = await self._control.zrange(self._conv(conversation, "queued"), 0, 0, withscores=True)
        return bool(first) and float(first[0][1]) < ticket

    async def _read_served(self, conversations: Sequence[str]) -> list[int]:
        # One round trip for every waiting conversation (one slot: legal on Cluster too).
        with _errors():
            values = await self._control.mget([self._conv(conv, "served") for conv in conversations])
        return [int(value or 0) for value in values]

    async def ping(self) -> None:
        with _errors():
            await self._control.ping()

    async def close(self) -> None:
        with _errors():
            await self._client.aclose()
            if self._control is not self._client:
                await self._control.aclose()


async def _through_outage(call: Callable[[], Awaitable[_T]], *, wait: float) -> _T:
    """``call()``, tried again for up to ``wait`` s while Redis does not answer."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + wait, _POLL[0]
    while True:
        try:
            with _errors():
                return await call()
        except StoreError:
            if loop.time() + pause > deadline:
                raise
        await asyncio.sleep(pause)  # Redis is away: try again soon
        pause = min(pause * 2, _POLL[1])


class _Turns:
    """The jobs of this process waiting for their conversation's turn, watched together.

    One read (``MGET`` of every waiting conversation's ``served``) every ``WATCH_EVERY`` s while
    any job waits, however many wait: a thousand jobs each polling their own key kept Redis and
    its connection pool so busy in the soak run that lease renewals came too late.
    """

    def __init__(
        self,
        read: Callable[[Sequence[str]], Awaitable[list[int]]],
        queued_before: Callable[[str, int], Awaitable[bool]],
    ) -> None:
        self._read = read
        self._queued_before = queued_before
        self._waiting: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._watch: Loop | None = None
        self._unreachable_since: float | None = None

    async def wait(self, conversation: str, ticket: int, *, wait: float) -> None:
        """Until every earlier ticket of the conversation is served: at most ``wait`` s, unless
        an earlier job is still queued (running late, or waiting to be taken over), then up to
        ``ORDER_PATIENCE`` times that."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        waiters = self._waiting.setdefault(conversation, [])
        waiters.append((ticket, turn))
        if self._watch is None or self._watch.task.done():
            self._watch = Loop(self._round, every=WATCH_EVERY, name="job-turns")
        until = loop.time() + wait * ORDER_PATIENCE
        try:
            while not turn.done():
                with suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(turn), timeout=min(wait, until - loop.time()))
                if turn.done():
                    break
                # A saturated deployment can take longer than ``wait`` to get through a dead
                # process's jobs (the soak with a 5 s lease): an earlier job still queued will be
                # answered, so its turn is kept. One that left the queue without passing the turn
                # on (dropped, trimmed) is not waited for.
                try:
                    earlier = await self._queued_before(conversation, ticket)
                except StoreError:
                    earlier = False
                if not earlier or loop.time() >= until:
                    log.warning("an earlier message is still unanswered; answering this one anyway")
                    break
        finally:
            waiters.remove((ticket, turn))
            if not waiters:
                self._waiting.pop(conversation, None)

    def advance(self, conversation: str, served: int) -> None:
        """Tickets up to ``served`` are done: the jobs whose turn it is now go."""
        for ticket, turn in self._waiting.get(conversation, ()):
            if served >= ticket - 1 and not turn.done():
                turn.set_result(None)

    async def _round(self) -> bool:
        if not self._waiting:
            return False  # nobody waits: the next waiter starts the watch again
        conversations = list(self._waiting)
        try:
            served = await self._read(conversations)
        except StoreError as error:
            # A Redis restart takes a second or two: wait that long for it, so that order holds
            # through it; a longer outage must not hold answers back.
            now = asyncio.get_running_loop().time()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since >= OUTAGE_WAIT:
                log.warning("cannot read the conversations' turns (%s): answering now", error)
                for waiters in self._waiting.values():
                    for _, turn in waiters:
                        if not turn.done():
                            turn.set_result(None)
            return True
        self._unreachable_since = None
        for conversation, value in zip(conversations, served, strict=True):
            self.advance(conversation, value)
        return True
