"""The embedded store: one SQLite file, so a laptop needs nothing else.

aiosqlite drives a single connection from its own thread. An asyncio mutex lets one operation at
a time use it: on a shared connection, statements of concurrent tasks would otherwise land inside
each other's transactions. One process owns the file, so ``lock`` is an in-process lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from pathlib import Path

import aiosqlite

from core.errors import ConfigError, StoreError
from core.locks import KeyedLocks
from core.memory import sqlite_people as people
from core.memory.base import PENDING_SEPARATOR, Remembered, UserExport, seen_digest
from core.memory.sqlite_people import TURN_COLUMNS
from core.memory.sqlite_schema import migrate
from core.memory.sqlite_summary import LIVE, read_summary, save_summary
from core.types import ConversationKey, Fact, StoredTurn, Summary, Turn, UserKey

__all__ = ["EmbeddedStore"]

PURGE_EVERY = 60.0  # seconds between opportunistic purges of expired rows
# Rows that belong to a conversation and go with it.
_CONVERSATION_TABLES = ("turns", "summaries", "participants", "pending", "conversations")


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError, ValueError) as error:  # aiosqlite: ValueError once closed
        raise StoreError(f"SQLite store failed: {error}") from error


class EmbeddedStore:
    """Memory in one SQLite file (WAL mode); the default store.

    Create it with ``await EmbeddedStore.open(path=...)``. Expired rows are invisible at once
    and purged at most once every ``PURGE_EVERY`` seconds, on writes. The tables are described
    in ``core/memory/sqlite_schema.py``.
    """

    path: Path
    max_turns: int
    _clock: Callable[[], float]
    _db: aiosqlite.Connection | None
    _mutex: asyncio.Lock
    _locks: KeyedLocks
    _purged_at: float

    def __init__(self, *, path: Path, max_turns: int = 200, clock: Callable[[], float] = time.time) -> None:
        if max_turns < 1:
            raise ConfigError("max_turns must be at least 1", source="memory", field="max_turns")
        self.path = path
        self.max_turns = max_turns
        self._clock = clock
        self._db = None
        self._mutex = asyncio.Lock()
        self._locks = KeyedLocks()
        self._purged_at = clock()

    @classmethod
    async def open(
        cls, *, path: Path, max_turns: int = 200, clock: Callable[[], float] = time.time
    ) -> EmbeddedStore:
        """Create the directory, the file and the schema as needed; return a ready store."""
        store = cls(path=path, max_turns=max_turns, clock=clock)
        await store._connect()
        return store

    async def _connect(self) -> None:
        with _errors():
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, isolation_level=None)
            try:
                for pragma in ("journal_mode=WAL", "busy_timeout=5000", "synchronous=NORMAL"):
                    await db.execute(f"PRAGMA {pragma}")
                # Deleted text is overwritten on disk, not merely unlinked (forget, PIPA).
                await db.execute("PRAGMA secure_delete=ON")
                await migrate(db, self.path)
            except BaseException:
                await db.close()
                raise
        self._db = db
        await self.purge()

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError(f"the SQLite store {self.path} is not open")
        return self._db

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._mutex:
            with _errors():
                yield self._connection()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._session() as db:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                # aiosqlite runs calls in order, so this undoes exactly this transaction,
                # even when the task was cancelled while a statement was still queued.
                with suppress(sqlite3.Error, ValueError):
                    await db.execute("ROLLBACK")
                raise

    async def claim(self, token: str, *, ttl: float) -> bool:
        now = self._clock()
        async with self._session() as db:
            cursor = await db.execute(
                "INSERT INTO seen (token, expires_at) VALUES (?, ?) ON CONFLICT (token)"
                " DO UPDATE SET expires_at = excluded.expires_at WHERE seen.expires_at <= ?",
                (seen_digest(token), now + ttl, now),
            )
            return cursor.rowcount == 1

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        async with self._session() as db:
            rows = await db.execute_fetchall(
                f"SELECT {TURN_COLUMNS} FROM turns WHERE conv = ? AND {LIVE} ORDER BY id DESC LIMIT ?",
                (key.id, key.id, self._clock(), limit),
            )
        return [people.turn_of(r).turn for r in reversed(list(rows))]

    async def turns_after(self, key: ConversationKey, *, seq: int) -> list[StoredTurn]:
        async with self._session() as db:
            rows = await db.execute_fetchall(
                f"SELECT {TURN_COLUMNS} FROM turns WHERE conv = ? AND id > ? AND {LIVE} ORDER BY id",
                (key.id, seq, key.id, self._clock()),
            )
        return [people.turn_of(r) for r in rows]

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        if not turns:
            return
        now, conv = self._clock(), key.id
        rows = [(conv, t.role, t.text, t.at, t.user_id, t.user_name, t.message_id) for t in turns]
        writers = sorted({t.user_id for t in turns if t.user_id})
        async with self._transaction() as db:
            # A conversation whose time ran out starts afresh instead of reviving unpurged rows.
            (live,) = await db.execute_fetchall(f"SELECT {LIVE}", (conv, now))
            if not live[0]:
                for table in _CONVERSATION_TABLES:
                    await db.execute(f"DELETE FROM {table} WHERE conv = ?", (conv,))
            await db.execute(
                "INSERT INTO conversations (conv, platform, tenant, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (conv) DO UPDATE SET expires_at = excluded.expires_at",
                (conv, key.platform, key.tenant, now + retention),
            )
            await db.executemany(
                "INSERT INTO turns (conv, role, text, at, user_id, user_name, message_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            await db.execute(
                "DELETE FROM turns WHERE conv = ? AND id <="
                " (SELECT id FROM turns WHERE conv = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (conv, conv, self.max_turns),
            )
            await db.executemany(
                "INSERT OR IGNORE INTO participants (conv, user_id) VALUES (?, ?)",
                [(conv, u) for u in writers],
            )
            # A person's facts live on while they keep talking to this bot.
            await db.executemany(
                "UPDATE facts SET expires_at = ? WHERE platform = ? AND tenant = ? AND bot = ?"
                " AND user_id = ? AND expires_at > ?",
                [(now + retention, key.platform, key.tenant, key.bot, u, now) for u in writers],
            )
        if now - self._purged_at >= PURGE_EVERY:
            await self.purge()

    async def summary(self, key: ConversationKey) -> Summary:
        async with self._session() as db:
            return await read_summary(db, key.id, now=self._clock())

    async def save_summary(
        self, key: ConversationKey, summary: Summary, *, replaces: Summary, folded: Sequence[StoredTurn]
    ) -> bool:
        async with self._transaction() as db:
            return await save_summary(
                db, key.id, summary, replaces=replaces, folded=folded, now=self._clock()
            )

    async def remember(self, user: UserKey, text: str, *, limit: int, retention: float) -> Remembered:
        now = self._clock()
        async with self._transaction() as db:
            return await people.remember(db, user, text, limit=limit, expires_at=now + retention, now=now)

    async def facts(self, user: UserKey) -> list[Fact]:
        async with self._session() as db:
            return await people.facts(db, user, now=self._clock())

    async def forget_fact(self, user: UserKey, number: int) -> Fact | None:
        async with self._transaction() as db:
            return await people.forget_fact(db, user, number, now=self._clock())

    async def clear(self, key: ConversationKey) -> None:
        async with self._transaction() as db:
            for table in _CONVERSATION_TABLES:
                await db.execute(f"DELETE FROM {table} WHERE conv = ?", (key.id,))

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        now = self._clock()
        async with self._transaction() as db:
            # Expired rows go first, so the count covers only what was still remembered.
            await self._purge(db, now)
            return await people.forget_user(db, platform=platform, tenant=tenant, user_id=user_id, now=now)

    async def export_user(self, *, platform: str, tenant: str, user_id: str) -> UserExport:
        async with self._session() as db:
            return await people.export_user(
                db, platform=platform, tenant=tenant, user_id=user_id, now=self._clock()
            )

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        async with self._session() as db:
            now = self._clock()
            await db.execute(
                "INSERT INTO pending (conv, text, expires_at) VALUES (?, ?, ?) ON CONFLICT (conv)"
                " DO UPDATE SET text = CASE WHEN pending.expires_at > ?"
                " THEN pending.text || ? || excluded.text ELSE excluded.text END,"
                " expires_at = excluded.expires_at",
                (key.id, text, now + ttl, now, PENDING_SEPARATOR),
            )

    async def pop_pending(self, key: ConversationKey) -> str | None:
        async with self._session() as db:
            rows = list(
                await db.execute_fetchall(
                    "DELETE FROM pending WHERE conv = ? RETURNING text, expires_at", (key.id,)
                )
            )
        if rows and rows[0][1] > self._clock():
            return str(rows[0][0])
        return None

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(key.id)

    async def purge(self) -> int:
        """Delete every expired row now; returns how many went."""
        now = self._clock()
        async with self._transaction() as db:
            removed = await self._purge(db, now)
        self._purged_at = now
        return removed

    async def _purge(self, db: aiosqlite.Connection, now: float) -> int:
        removed = 0
        expired = "(SELECT conv FROM conversations WHERE expires_at <= ?)"
        # Who wrote where is bookkeeping, not an item of memory: not counted.
        await db.execute(f"DELETE FROM participants WHERE conv IN {expired}", (now,))
        for statement in (
            f"DELETE FROM turns WHERE conv IN {expired}",
            f"DELETE FROM summaries WHERE conv IN {expired}",
            "DELETE FROM conversations WHERE expires_at <= ?",
            "DELETE FROM pending WHERE expires_at <= ?",
            "DELETE FROM facts WHERE expires_at <= ?",
            "DELETE FROM seen WHERE expires_at <= ?",
        ):
            cursor = await db.execute(statement, (now,))
            removed += cursor.rowcount
        return removed

    async def ping(self) -> None:
        async with self._session() as db:
            await db.execute_fetchall("SELECT 1")

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._mutex:
                await db.close()
