"""The Redis store: memory shared by every process of the service, Redis Cluster ready.

Key layout (``<p>`` is the prefix, ``<conv>`` is ``ConversationKey.id``, ``<user>`` is ``UserKey.id``).
This is the one place it is documented; ``redis_codec.Keys`` spells it. The braces are Cluster
hash tags: every key of one conversation lives in one slot, so its MULTI blocks and the append
script stay legal.

    <p>:conv:{<conv>}:turns         list, one JSON turn per item with its "seq", oldest first;
                                    at most max_turns; expires ``retention`` after the last append
    <p>:conv:{<conv>}:seq           integer, the last seq given to a turn here; expires with the turns;
                                    kept on reset so that numbers are not reused
    <p>:conv:{<conv>}:summary       JSON {"text", "upto"}: the rolling summary and the seq of the
                                    last turn folded into it; expires with the turns
    <p>:conv:{<conv>}:pending       string, the answers not delivered yet (joined by a blank line);
                                    expires after the ttl of the last one
    <p>:conv:{<conv>}:lock          the cross-process turn lock; expires lock_timeout after its
                                    holder last renewed it (every lock_timeout / 3 while held)
    <p>:facts:<user>                list of JSON facts {"text", "at"}, oldest first, at most the
                                    engine's cap; expires ``retention`` after the user's last
                                    message to that bot
    <p>:user:<platform>:<tenant>:<user_id>
                                    set: the ids of conversations the user wrote in, and
                                    "#facts:<bot>" for each bot holding their facts; for
                                    forget_user and export_user; expires with its longest-lived member
    <p>:seen:{<p>:jobs}:<sha256>    "1" while a message counts as seen (dedupe); the token is
                                    hashed so that no id outlives an erasure; expires after ttl;
                                    in the job stream's slot, so that a door's claim and the job
                                    it queues are written by one script (redis_jobs.py)
    <p>:rate:<scope>:<sha256>       string "<tokens> <ms>": a rate-limit bucket of a user or a tenant
                                    (``redis_limits.py``); the id is hashed as for seen; expires
                                    when the bucket would be full again
    <p>:order:{<p>:jobs}:<sha>:ticket
                                    integer, the last ticket given to a queued job of the conversation
                                    whose id hashes to <sha> (core/memory/redis_jobs.py; hashed
                                    like dedupe marks; in the job stream's slot); expires after 3 days
    <p>:order:{<p>:jobs}:<sha>:served
                                    integer, the highest ticket whose job is done; expires with it
    <p>:order:{<p>:jobs}:<sha>:queued
                                    sorted set: the tickets of the conversation's jobs put and not
                                    done yet; a job whose earlier job is still queued keeps its turn
    <p>:order:{<p>:jobs}:<sha>:parked
                                    sorted set: ids of the conversation's messages held through a
                                    Redis outage by some process, scored by arrival time, until
                                    recorded; a later message's job waits for them (briefly)
    <p>:jobs                        stream of accepted messages not answered yet ({"job": JSON,
                                    text masked, "ticket": n}); consumer group "dari", one
                                    consumer per process;
                                    entries are deleted once answered; capped at ~100,000
    <p>:job:{<p>:jobs}:<job id>     hash: what a job's delivery already did ("#attempt" and door
                                    marks such as a Slack message ts); written only by the process
                                    holding the job (so in the job stream's slot); deleted with
                                    the job, else expires after a day
    <p>:put:{<p>:jobs}:<job id>     "<entry> <ticket>" until the job is done (at most a minute): a
                                    put run again after its reply was lost returns it (one record)

Id parts are percent-quoted (as in ``ConversationKey.id``), so ':' or braces inside platform ids
cannot break the layout.

Memory per conversation is bounded: max_turns turns of at most ``MAX_TURN_CHARS`` characters
each (the engine cuts longer ones), one summary of at most the bot's ``summary_tokens``, one
pending answer; per person and bot, at most ``MAX_FACTS`` facts of ``MAX_FACT_CHARS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError, WatchError

from core.errors import ConfigError, StoreError
from core.locks import KeyedLocks
from core.loops import Loop
from core.memory import redis_people as people
from core.memory.base import PENDING_SEPARATOR, Remembered, UserExport
from core.memory.redis_codec import Keys, dump_summary, dump_turn, load_fact, load_summary, load_turn, text
from core.types import ConversationKey, Fact, StoredTurn, Summary, Turn, UserKey

__all__ = ["RedisStore"]

log = logging.getLogger(__name__)

# Numbers and appends a conversation's turns in one step: seqs must follow list order even when
# appends race, and the JSON item is written whole with its seq in front.
_APPEND = """
local n = #ARGV - 2
local last = redis.call('INCRBY', KEYS[2], n)
for i = 1, n do
  local seq = string.format('%d', last - n + i)
  redis.call('RPUSH', KEYS[1], '{"seq":' .. seq .. ',' .. string.sub(ARGV[i + 2], 2))
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return last
"""

# Keeps an undelivered answer after those kept before it, in one step (two jobs may keep theirs
# at once); the whole expires ``ttl`` after the last one.
_KEEP_PENDING = """
local old = redis.call('GET', KEYS[1])
local text = ARGV[1]
if old then text = old .. ARGV[2] .. ARGV[1] end
redis.call('SET', KEYS[1], text, 'PX', ARGV[3])
"""


async def _renew(lock: Lock) -> bool:
    # The lock lives as long as its holder: a short expiry, renewed while the turn runs, so that
    # a process killed mid-turn blocks its conversation for seconds, not minutes.
    try:
        await lock.reacquire()
    except RedisError as error:  # lost (or Redis away): the turn goes on, as before
        log.warning("could not extend a conversation lock: %s", type(error).__name__)
        return False
    return True


def _ms(seconds: float) -> int:
    # Redis refuses an expiry of zero; a millisecond is the shortest it takes.
    return max(1, round(seconds * 1000))


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RedisError as error:
        raise StoreError(f"Redis store failed: {error}") from error


class RedisStore:
    """Memory in Redis; the store for production and for several processes.

    The store owns its client and closes it in ``close``.
    """

    prefix: str
    max_turns: int
    lock_timeout: float
    _client: Redis
    _keys: Keys
    _locks: KeyedLocks

    def __init__(
        self, *, client: Redis, prefix: str = "dari", max_turns: int = 200, lock_timeout: float = 15.0
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigError("the Redis prefix must be non-empty, without braces", field="prefix")
        if max_turns < 1:
            raise ConfigError("max_turns must be at least 1", source="memory", field="max_turns")
        self.prefix = prefix
        self.max_turns = max_turns
        self.lock_timeout = lock_timeout
        self._client = client
        self._keys = Keys(prefix)
        self._locks = KeyedLocks()
        self._append = client.register_script(_APPEND)
        self._keep_pending = client.register_script(_KEEP_PENDING)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "dari", max_turns: int = 200, lock_timeout: float = 15.0
    ) -> RedisStore:
        """A store with its own client for ``url`` (``redis://``, ``rediss://``, ``unix://``)."""
        client = Redis.from_url(url)
        return cls(client=client, prefix=prefix, max_turns=max_turns, lock_timeout=lock_timeout)

    async def claim(self, token: str, *, ttl: float) -> bool:
        with _errors():
            done = await self._client.set(self._keys.seen(token), b"1", nx=True, px=_ms(ttl))
        return bool(done)

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        if limit <= 0:  # LRANGE -0 -1 would be the whole list
            return []
        with _errors():
            raw = await self._client.lrange(self._keys.conv(key.id, "turns"), -limit, -1)
        return [load_turn(item).turn for item in raw]

    async def turns_after(self, key: ConversationKey, *, seq: int) -> list[StoredTurn]:
        with _errors():
            raw = await self._client.lrange(self._keys.conv(key.id, "turns"), 0, -1)
        return [turn for turn in map(load_turn, raw) if turn.seq > seq]

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        if not turns:
            return
        ttl, conv = _ms(retention), key.id
        with _errors():
            # The user index lives in another slot, so it cannot join the script below. It goes
            # first: an index entry without turns is harmless, turns missing from it are not.
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id in sorted({t.user_id for t in turns if t.user_id}):
                    index = self._keys.user(key.platform, key.tenant, user_id)
                    pipe.sadd(index, conv)
                    pipe.pexpire(index, ttl, nx=True)
                    pipe.pexpire(index, ttl, gt=True)
                    # A person's facts live on while they keep talking to this bot.
                    user = UserKey(platform=key.platform, tenant=key.tenant, user_id=user_id, bot=key.bot)
                    pipe.pexpire(self._keys.facts(user), ttl)
                await pipe.execute()
            parts = [self._keys.conv(conv, part) for part in ("turns", "seq", "summary")]
            await self._append(keys=parts, args=[self.max_turns, ttl, *map(dump_turn, turns)])

    async def summary(self, key: ConversationKey) -> Summary:
        with _errors():
            return load_summary(await self._client.get(self._keys.conv(key.id, "summary")))

    async def save_summary(
        self, key: ConversationKey, summary: Summary, *, replaces: Summary, folded: Sequence[StoredTurn]
    ) -> bool:
        turns_key, summary_key = self._keys.conv(key.id, "turns"), self._keys.conv(key.id, "summary")
        wanted = {t.seq: t for t in folded}
        with _errors():
            async with self._client.pipeline(transaction=True) as pipe:
                for _ in range(people.WATCH_RETRIES):
                    try:
                        await pipe.watch(turns_key, summary_key)
                        if load_summary(await pipe.get(summary_key)) != replaces:
                            return False
                        stored = [
                            t for t in map(load_turn, await pipe.lrange(turns_key, 0, -1)) if t.seq in wanted
                        ]
                        ttl = await pipe.pttl(turns_key)
                        if stored != sorted(wanted.values(), key=lambda t: t.seq) or ttl <= 0:
                            return False
                        pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                        pipe.set(summary_key, dump_summary(summary), px=ttl)
                        await pipe.execute()
                    except WatchError:
                        continue  # a turn came in meanwhile: compare again
                    return True
        return False

    async def remember(self, user: UserKey, text: str, *, limit: int, retention: float) -> Remembered:
        fact = Fact(text=text, at=time.time())
        with _errors():
            return await people.remember(
                self._client, self._keys, user, fact, limit=limit, retention=retention
            )

    async def facts(self, user: UserKey) -> list[Fact]:
        with _errors():
            return [load_fact(raw) for raw in await self._client.lrange(self._keys.facts(user), 0, -1)]

    async def forget_fact(self, user: UserKey, number: int) -> Fact | None:
        with _errors():
            return await people.forget_fact(self._client, self._keys, user, number)

    async def clear(self, key: ConversationKey) -> None:
        with _errors():
            # The seq counter stays (it expires with retention): numbers are never reused, so a
            # summariser that read the old turns cannot match new ones.
            await self._client.delete(*(self._keys.conv(key.id, p) for p in ("turns", "summary", "pending")))

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        with _errors():
            return await people.forget_user(
                self._client, self._keys, platform=platform, tenant=tenant, user_id=user_id
            )

    async def export_user(self, *, platform: str, tenant: str, user_id: str) -> UserExport:
        with _errors():
            return await people.export_user(
                self._client, self._keys, platform=platform, tenant=tenant, user_id=user_id
            )

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        with _errors():
            await self._keep_pending(
                keys=[self._keys.conv(key.id, "pending")], args=[text, PENDING_SEPARATOR, _ms(ttl)]
            )

    async def pop_pending(self, key: ConversationKey) -> str | None:
        with _errors():
            value = await self._client.getdel(self._keys.conv(key.id, "pending"))
        return None if value is None else text(value)

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        return self._hold(key)

    @asynccontextmanager
    async def _hold(self, key: ConversationKey) -> AsyncIterator[None]:
        # The local lock keeps this process's tasks in arrival order (Redis locks are not FIFO)
        # and means only one task per process polls Redis for a given conversation.
        async with self._locks.hold(key.id):
            lock = Lock(
                self._client,
                self._keys.conv(key.id, "lock"),
                timeout=self.lock_timeout,
                blocking=True,
                thread_local=False,
            )
            with _errors():
                await lock.acquire()
            # Stopped by a flag, not by cancelling: see core/loops.py.
            renewing = Loop(lambda: _renew(lock), every=self.lock_timeout / 3, name="conversation-lock")
            try:
                yield
            finally:
                await renewing.stop()
                try:
                    await lock.release()
                except RedisError as error:  # LockNotOwnedError too: it outlived lock_timeout
                    # Raising here would hide the turn's own outcome; the lock expires on its own.
                    log.warning(
                        "could not release conversation lock: %s", error, extra={"conversation": key.id}
                    )

    async def ping(self) -> None:
        with _errors():
            await self._client.ping()

    async def close(self) -> None:
        with _errors():
            await self._client.aclose()
