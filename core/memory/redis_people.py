"""The Redis store's operations on people: personal facts, erasure and export.

Functions take the store's client and key names; errors are mapped by the caller.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import WatchError

from core.errors import StoreError
from core.memory.base import ConversationExport, Remembered, UserExport, answered_by
from core.memory.redis_codec import (
    FACTS_MEMBER,
    Keys,
    dump_fact,
    load_fact,
    load_summary,
    load_turn,
    text,
)
from core.types import ConversationKey, Fact, StoredTurn, UserKey

__all__ = ["WATCH_RETRIES", "export_user", "forget_fact", "forget_user", "remember"]

WATCH_RETRIES = 20
_FORGET_ROUNDS = 5


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


async def _index(
    client: Redis, keys: Keys, platform: str, tenant: str, user_id: str, member: str, ttl: int
) -> None:
    """Add ``member`` to the user's index; the index lives as long as its longest-lived member."""
    name = keys.user(platform, tenant, user_id)
    async with client.pipeline(transaction=False) as pipe:
        pipe.sadd(name, member)
        pipe.pexpire(name, ttl, nx=True)
        pipe.pexpire(name, ttl, gt=True)
        await pipe.execute()


async def remember(
    client: Redis, keys: Keys, user: UserKey, fact: Fact, *, limit: int, retention: float
) -> Remembered:
    ttl, name = _ms(retention), keys.facts(user)
    # Indexed first, like turns: an index entry without facts is harmless, facts missing from it are not.
    await _index(client, keys, user.platform, user.tenant, user.user_id, keys.facts_member(user.bot), ttl)
    async with client.pipeline(transaction=True) as pipe:
        for _ in range(WATCH_RETRIES):
            try:
                await pipe.watch(name)
                known = [load_fact(raw).text for raw in await pipe.lrange(name, 0, -1)]
                if fact.text not in known and len(known) >= limit:
                    return Remembered.FULL
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                if fact.text not in known:
                    pipe.rpush(name, dump_fact(fact))
                # A person's facts share one expiry: retention after their last word to this bot.
                pipe.pexpire(name, ttl)
                await pipe.execute()
            except WatchError:
                continue
            return Remembered.DUPLICATE if fact.text in known else Remembered.ADDED
    raise StoreError("personal memory kept changing while adding a fact")


async def forget_fact(client: Redis, keys: Keys, user: UserKey, number: int) -> Fact | None:
    if number < 1:
        return None
    raw = await client.lindex(keys.facts(user), number - 1)
    # LREM by value: facts are unique, so this removes exactly the fact that was numbered.
    if raw is None or not await client.lrem(keys.facts(user), 1, text(raw)):
        return None
    return load_fact(raw)


async def _forget_in(client: Redis, keys: Keys, conv: str, user_id: str) -> int:
    turns_key, summary_key = keys.conv(conv, "turns"), keys.conv(conv, "summary")
    async with client.pipeline(transaction=True) as pipe:
        for _ in range(WATCH_RETRIES):
            try:
                await pipe.watch(turns_key, summary_key)
                raw = await pipe.lrange(turns_key, 0, -1)
                turns = [load_turn(item).turn for item in raw]
                dropped = answered_by(turns, user_id)
                shared = any(t.role == "user" and t.user_id != user_id for t in turns)
                ttl = await pipe.pttl(turns_key)
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                if shared or not dropped:
                    # The summary may retell them even when their own turns were trimmed: dropped.
                    pipe.delete(summary_key)
                    if dropped:
                        pipe.delete(turns_key)
                        pipe.rpush(turns_key, *[item for i, item in enumerate(raw) if i not in dropped])
                        if ttl > 0:
                            pipe.pexpire(turns_key, ttl)
                    results = await pipe.execute()
                    return len(dropped) + int(results[0])
                # Only they wrote here: the whole conversation goes.
                for part in ("turns", "summary", "pending", "seq"):
                    pipe.delete(keys.conv(conv, part))
                results = await pipe.execute()
                return len(turns) + int(results[1]) + int(results[2])
            except WatchError:
                continue  # an append or a summary got in between; read again
    raise StoreError(f"conversation {conv} kept changing while forgetting a user")


async def forget_user(client: Redis, keys: Keys, *, platform: str, tenant: str, user_id: str) -> int:
    name = keys.user(platform, tenant, user_id)
    removed = 0
    for _ in range(_FORGET_ROUNDS):
        members = sorted(text(member) for member in await client.smembers(name))
        if not members:
            return removed
        for member in members:
            if member.startswith(FACTS_MEMBER):
                user = UserKey(platform=platform, tenant=tenant, user_id=user_id, bot=keys.bot_of(member))
                async with client.pipeline(transaction=True) as pipe:
                    pipe.llen(keys.facts(user))
                    pipe.delete(keys.facts(user))
                    removed += int((await pipe.execute())[0])
            else:
                removed += await _forget_in(client, keys, member, user_id)
        # SREM rather than DEL: a conversation added meanwhile is handled next round.
        await client.srem(name, *members)
    raise StoreError(f"the user kept writing while being forgotten ({removed} items removed so far)")


async def export_user(client: Redis, keys: Keys, *, platform: str, tenant: str, user_id: str) -> UserExport:
    conversations: list[ConversationExport] = []
    facts: list[tuple[str, Fact]] = []
    for member in sorted(text(m) for m in await client.smembers(keys.user(platform, tenant, user_id))):
        if member.startswith(FACTS_MEMBER):
            bot = keys.bot_of(member)
            user = UserKey(platform=platform, tenant=tenant, user_id=user_id, bot=bot)
            facts.extend((bot, load_fact(raw)) for raw in await client.lrange(keys.facts(user), 0, -1))
            continue
        async with client.pipeline(transaction=True) as pipe:
            pipe.lrange(keys.conv(member, "turns"), 0, -1)
            pipe.get(keys.conv(member, "summary"))
            raw, summary_raw = await pipe.execute()
        turns: list[StoredTurn] = [load_turn(item) for item in raw]
        shared = any(t.turn.role == "user" and t.turn.user_id != user_id for t in turns)
        mine = tuple(turns[i] for i in sorted(answered_by([t.turn for t in turns], user_id)))
        summary = None if shared or summary_raw is None else load_summary(summary_raw)
        if mine or summary is not None:
            key = ConversationKey.from_id(member)
            conversations.append(ConversationExport(key=key, shared=shared, turns=mine, summary=summary))
    return UserExport(conversations=tuple(conversations), facts=tuple(facts))
