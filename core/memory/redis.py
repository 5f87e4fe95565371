"""The Redis store: memory shared by every process of the service, Redis Cluster ready.

Key layout (``<p>`` is the prefix, ``<conv>`` is ``ConversationKey.id``). The braces are Cluster
hash tags: every key of one conversation lives in one slot, so its MULTI blocks stay legal.

    <p>:conv:{<conv>}:turns         list, one JSON turn per item, oldest first; at most max_turns;
                                    expires ``retention`` seconds after the last append
    <p>:conv:{<conv>}:pending       string, an answer not delivered yet; expires after its ttl
    <p>:conv:{<conv>}:lock          the cross-process turn lock; expires after lock_timeout
    <p>:user:<platform>:<tenant>:<user_id>
                                    set of the ids of conversations the user wrote in, for
                                    forget_user; expires with the longest-lived of them
    <p>:seen:<token>                "1" while a message counts as seen (dedupe); expires after ttl

Id parts are percent-quoted (as in ``ConversationKey.id``), so ':' or braces inside platform ids
cannot break the layout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import asdict
from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError, WatchError

from core.errors import ConfigError, StoreError
from core.locks import KeyedLocks
from core.types import ConversationKey, Turn

__all__ = ["RedisStore"]

log = logging.getLogger(__name__)

_WATCH_RETRIES = 20
_FORGET_ROUNDS = 5


def _quote(value: str, safe: str = "@._-=") -> str:
    return quote(value, safe=safe)


def _ms(seconds: float) -> int:
    # Redis refuses an expiry of zero; a millisecond is the shortest it takes.
    return max(1, round(seconds * 1000))


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dump(turn: Turn) -> str:
    return json.dumps(asdict(turn), ensure_ascii=False, separators=(",", ":"))


def _load(raw: bytes | str) -> Turn:
    try:
        data: dict[str, Any] = json.loads(raw)
        role = data["role"]
        if role != "user" and role != "assistant":
            raise ValueError(f"unknown role {role!r}")
        return Turn(
            role=role,
            text=str(data["text"]),
            at=float(data["at"]),
            user_id=str(data.get("user_id", "")),
            user_name=str(data.get("user_name", "")),
            message_id=str(data.get("message_id", "")),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"unreadable turn in the Redis store: {error}") from error


def _dropped(turns: Sequence[Turn], user_id: str) -> set[int]:
    """Indexes of the user's turns and of the assistant turns that directly answer them."""
    dropped: set[int] = set()
    for i, turn in enumerate(turns):
        if turn.user_id != user_id:
            continue
        dropped.add(i)
        if turn.role == "user" and i + 1 < len(turns) and turns[i + 1].role == "assistant":
            dropped.add(i + 1)
    return dropped


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
    _locks: KeyedLocks

    def __init__(
        self, *, client: Redis, prefix: str = "dari", max_turns: int = 200, lock_timeout: float = 300.0
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigError("the Redis prefix must be non-empty, without braces", field="prefix")
        if max_turns < 1:
            raise ConfigError("max_turns must be at least 1", source="memory", field="max_turns")
        self.prefix = prefix
        self.max_turns = max_turns
        self.lock_timeout = lock_timeout
        self._client = client
        self._locks = KeyedLocks()

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "dari", max_turns: int = 200, lock_timeout: float = 300.0
    ) -> RedisStore:
        """A store with its own client for ``url`` (``redis://``, ``rediss://``, ``unix://``)."""
        client = Redis.from_url(url)
        return cls(client=client, prefix=prefix, max_turns=max_turns, lock_timeout=lock_timeout)

    def _conv_key(self, conv: str, part: str) -> str:
        return f"{self.prefix}:conv:{{{conv}}}:{part}"

    def _user_key(self, platform: str, tenant: str, user_id: str) -> str:
        return f"{self.prefix}:user:{_quote(platform)}:{_quote(tenant)}:{_quote(user_id)}"

    async def claim(self, token: str, *, ttl: float) -> bool:
        with _errors():
            done = await self._client.set(
                f"{self.prefix}:seen:{_quote(token, ':@._-=')}", b"1", nx=True, px=_ms(ttl)
            )
        return bool(done)

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        if limit <= 0:  # LRANGE -0 -1 would be the whole list
            return []
        with _errors():
            raw = await self._client.lrange(self._conv_key(key.id, "turns"), -limit, -1)
        return [_load(item) for item in raw]

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        if not turns:
            return
        ttl = _ms(retention)
        turns_key = self._conv_key(key.id, "turns")
        with _errors():
            # The user index lives in another slot, so it cannot join the MULTI below. It goes
            # first: an index entry without turns is harmless, turns missing from it are not.
            async with self._client.pipeline(transaction=False) as pipe:
                for user_id in sorted({t.user_id for t in turns if t.user_id}):
                    index = self._user_key(key.platform, key.tenant, user_id)
                    pipe.sadd(index, key.id)
                    pipe.pexpire(index, ttl, nx=True)
                    pipe.pexpire(index, ttl, gt=True)
                await pipe.execute()
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.rpush(turns_key, *[_dump(t) for t in turns])
                pipe.ltrim(turns_key, -self.max_turns, -1)
                pipe.pexpire(turns_key, ttl)
                await pipe.execute()

    async def clear(self, key: ConversationKey) -> None:
        with _errors():
            await self._client.delete(self._conv_key(key.id, "turns"), self._conv_key(key.id, "pending"))

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        index = self._user_key(platform, tenant, user_id)
        removed = 0
        with _errors():
            for _ in range(_FORGET_ROUNDS):
                convs = sorted(_str(member) for member in await self._client.smembers(index))
                if not convs:
                    return removed
                for conv in convs:
                    removed += await self._forget_in(conv, user_id)
                # SREM rather than DEL: a conversation added meanwhile is handled next round.
                await self._client.srem(index, *convs)
        raise StoreError(f"the user kept writing while being forgotten ({removed} items removed so far)")

    async def _forget_in(self, conv: str, user_id: str) -> int:
        turns_key, pending_key = self._conv_key(conv, "turns"), self._conv_key(conv, "pending")
        async with self._client.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_RETRIES):
                try:
                    await pipe.watch(turns_key)
                    raw = await pipe.lrange(turns_key, 0, -1)
                    turns = [_load(item) for item in raw]
                    dropped = _dropped(turns, user_id)
                    if not dropped:
                        return 0  # leaving the pipeline's block unwatches
                    shared = any(t.role == "user" and t.user_id != user_id for t in turns)
                    ttl = await pipe.pttl(turns_key)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    pipe.delete(turns_key)
                    if shared:
                        pipe.rpush(turns_key, *[item for i, item in enumerate(raw) if i not in dropped])
                        if ttl > 0:
                            pipe.pexpire(turns_key, ttl)
                    else:
                        pipe.delete(pending_key)
                    results = await pipe.execute()
                except WatchError:
                    continue  # an append got in between; read again
                return len(dropped) if shared else len(turns) + int(results[1])
        raise StoreError(f"conversation {conv} kept changing while forgetting a user")

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        with _errors():
            await self._client.set(self._conv_key(key.id, "pending"), text.encode(), px=_ms(ttl))

    async def pop_pending(self, key: ConversationKey) -> str | None:
        with _errors():
            value = await self._client.getdel(self._conv_key(key.id, "pending"))
        return None if value is None else _str(value)

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        return self._hold(key)

    @asynccontextmanager
    async def _hold(self, key: ConversationKey) -> AsyncIterator[None]:
        # The local lock keeps this process's tasks in arrival order (Redis locks are not FIFO)
        # and means only one task per process polls Redis for a given conversation.
        async with self._locks.hold(key.id):
            lock = Lock(
                self._client,
                self._conv_key(key.id, "lock"),
                timeout=self.lock_timeout,
                blocking=True,
                thread_local=False,
            )
            with _errors():
                await lock.acquire()
            try:
                yield
            finally:
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
