"""The durable job queue: one Redis Stream, one consumer group, tickets for order per conversation.

Keys (documented with the rest in ``core/memory/redis.py``)::

    <p>:jobs                     stream of {"job": JSON}; consumer group "dari", one consumer per process
    <p>:job:{<job id>}           hash: delivery marks of a job and "#attempt"; deleted when done
    <p>:order:{<sha>}:ticket     integer, the last ticket given to a job of the conversation
    <p>:order:{<sha>}:served     integer, the highest ticket whose job is done

The accepting process takes its own job in the same script that adds it (XADD, then
XREADGROUP ">" as itself), so a job starts at once where it was accepted, and no other process
reads it unless it is taken over: a process renews its jobs' idle time (XCLAIM ... JUSTID) well
within the lease, and every process XAUTOCLAIMs entries idle for longer than the lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext, suppress
from dataclasses import replace

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from core.errors import StoreError
from core.jobs import Claim, Job, dump_job, load_job
from core.memory.base import seen_digest

__all__ = ["GROUP", "RedisQueue"]

log = logging.getLogger(__name__)

GROUP = "dari"
MAX_LENGTH = 100_000  # entries kept (approximately); only unanswered jobs stay in the stream
STATE_TTL = 86400.0  # delivery marks outlive any lease and retry
TICKET_TTL = 3 * 86400.0  # like dedupe marks: a conversation idle this long starts again at 1
OUTAGE_WAIT = 5.0  # how long a job waits for an unreachable Redis to tell it its turn
_POLL = (0.02, 0.5)  # the first and the longest pause between checks of a conversation's turn
_ATTEMPT = "#attempt"
PRUNE_EVERY = 600.0  # seconds between looks for consumers of processes long gone
GONE_AFTER = 3600.0  # a consumer idle this long, holding nothing, is forgotten

# Add the job and take it as this consumer, atomically: nobody else can read it first.
_PUT = """
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'job', ARGV[4])
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
if not read or read[1][2][1][1] ~= id then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'FORCE', 'JUSTID')
end
return id
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

_TICKET = """
local ticket = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return ticket
"""

_SERVED = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
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
        prefix: the store's key prefix.
        consumer: this process's name in the consumer group (unique per process start).
        lease: seconds after which a job its process did not renew may be taken over.
    """

    durable = True

    def __init__(self, *, client: Redis, prefix: str, consumer: str, lease: float) -> None:
        self._client = client
        self._prefix = prefix
        self._stream = f"{prefix}:jobs"
        self._consumer = consumer
        self._lease = lease
        self._cursor = "0-0"
        self._put = client.register_script(_PUT)
        self._hold = client.register_script(_HOLD)
        self._ticket = client.register_script(_TICKET)
        self._served = client.register_script(_SERVED)
        self._advanced: dict[str, asyncio.Event] = {}
        self._pruned_at = 0.0

    @classmethod
    def from_url(cls, url: str, *, prefix: str, consumer: str, lease: float) -> RedisQueue:
        return cls(client=Redis.from_url(url), prefix=prefix, consumer=consumer, lease=lease)

    def _state(self, job_id: str) -> str:
        return f"{self._prefix}:job:{{{job_id}}}"

    def _conv(self, conversation: str, part: str) -> str:
        # Hashed like dedupe marks: a conversation id names a person (a Kakao chat is its user),
        # and these counters outlive an erasure.
        return f"{self._prefix}:order:{{{seen_digest(conversation)}}}:{part}"

    async def put(self, job: Job) -> Claim:
        conv = job.inbound.key.id
        with _errors():
            keys = [self._conv(conv, "ticket"), self._conv(conv, "served")]
            ticket = int(await self._ticket(keys=keys, args=[_ms(TICKET_TTL)]))
            job = replace(job, ticket=ticket)
            args: list[str | int] = [GROUP, self._consumer, MAX_LENGTH, dump_job(job)]
            entry = _text(await self._put(keys=[self._stream], args=args))
        return Claim(job=job, entry=entry)

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
            try:
                cursor, entries, *rest = await self._client.xautoclaim(
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
        raw = fields.get(b"job") if fields else None
        try:
            job = load_job(raw or b"")
        except ValueError as error:
            log.error("dropping an unreadable job: %s", error)
            await self._forget(_text(entry), "")
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
        with _errors():
            await self._forget(claim.entry, claim.job.id)

    async def _forget(self, entry: str, job_id: str) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.xack(self._stream, GROUP, entry)
            pipe.xdel(self._stream, entry)
            if job_id:
                pipe.delete(self._state(job_id))
            await pipe.execute()

    async def mark(self, claim: Claim, name: str, value: str) -> None:
        state = self._state(claim.job.id)
        with _errors():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(state, name, value)
                pipe.pexpire(state, _ms(STATE_TTL))
                await pipe.execute()

    def turn(self, claim: Claim, *, wait: float) -> AbstractAsyncContextManager[None]:
        if claim.job.ticket <= 0:
            return nullcontext()
        return self._turn(claim.job.inbound.key.id, claim.job.ticket, wait)

    @asynccontextmanager
    async def _turn(self, conv: str, ticket: int, wait: float) -> AsyncIterator[None]:
        await self._await_turn(conv, ticket, wait)
        # Cancelled (shutdown, lease lost), the job is not done: whoever takes it over passes
        # the turn on, and later messages of the conversation wait for it.
        yield
        try:
            with _errors():
                await self._served(keys=[self._conv(conv, "served")], args=[ticket, _ms(TICKET_TTL)])
        except StoreError as error:
            log.warning("could not pass the conversation's turn on: %s", error)
        if (event := self._advanced.pop(conv, None)) is not None:
            event.set()  # a job of the same conversation waiting here checks at once

    async def _await_turn(self, conv: str, ticket: int, wait: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        pause = _POLL[0]
        unreachable_since: float | None = None
        while True:
            try:
                with _errors():
                    served = int(await self._client.get(self._conv(conv, "served")) or 0)
            except StoreError as error:
                # A Redis restart takes a second or two: wait that long for it, so that order
                # holds through it; a longer outage must not hold answers back.
                now = loop.time()
                unreachable_since = now if unreachable_since is None else unreachable_since
                if now - unreachable_since >= min(OUTAGE_WAIT, wait) or now >= deadline:
                    log.warning("cannot read the conversation's turn (%s): answering now", error)
                    return
                await asyncio.sleep(min(pause, deadline - now))  # Redis is away: check again soon
                pause = min(pause * 2, _POLL[1])
                continue
            unreachable_since = None
            if served >= ticket - 1:
                return
            left = deadline - loop.time()
            if left <= 0:
                log.warning("an earlier message is still unanswered; answering this one anyway")
                return
            event = self._advanced.setdefault(conv, asyncio.Event())
            # Woken at once by a job of this process; jobs of other processes are polled.
            with suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(pause, left))
            pause = min(pause * 2, _POLL[1])

    async def ping(self) -> None:
        with _errors():
            await self._client.ping()

    async def close(self) -> None:
        with _errors():
            await self._client.aclose()
