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
from typing import Any

import aiosqlite

from core.errors import ConfigError, StoreError
from core.locks import KeyedLocks
from core.types import ConversationKey, Role, Turn

__all__ = ["EmbeddedStore"]

PURGE_EVERY = 60.0  # seconds between opportunistic purges of expired rows
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    conv TEXT PRIMARY KEY, platform TEXT NOT NULL, tenant TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversations_by_expiry ON conversations (expires_at);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY, conv TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL,
    user_id TEXT NOT NULL, user_name TEXT NOT NULL, message_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_conv ON turns (conv, id);
CREATE INDEX IF NOT EXISTS turns_by_user ON turns (user_id);
CREATE TABLE IF NOT EXISTS pending (conv TEXT PRIMARY KEY, text TEXT NOT NULL, expires_at REAL NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (token TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expires_at);
"""
_LIVE = "EXISTS (SELECT 1 FROM conversations c WHERE c.conv = ? AND c.expires_at > ?)"
# The user's own turns, and each assistant turn right after one of their user turns.
_USER_TURNS = """
SELECT id FROM (
    SELECT id, role, user_id, LAG(role) OVER w AS prev_role, LAG(user_id) OVER w AS prev_user
    FROM turns WHERE conv = ? WINDOW w AS (ORDER BY id)
) WHERE user_id = ? OR (role = 'assistant' AND prev_role = 'user' AND prev_user = ?)
"""


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError, ValueError) as error:  # aiosqlite: ValueError once closed
        raise StoreError(f"SQLite store failed: {error}") from error


def _role(value: Any) -> Role:
    if value == "user":
        return "user"
    if value == "assistant":
        return "assistant"
    raise StoreError(f"unknown role in the SQLite store: {value!r}")


class EmbeddedStore:
    """Memory in one SQLite file (WAL mode); the default store.

    Create it with ``await EmbeddedStore.open(path=...)``. Expired rows are invisible at once
    and purged at most once every ``PURGE_EVERY`` seconds, on writes.
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
                rows = list(await db.execute_fetchall("PRAGMA user_version"))
                if rows[0][0] > _SCHEMA_VERSION:
                    raise StoreError(f"{self.path} was written by a newer dari (schema {rows[0][0]})")
                await db.executescript(_SCHEMA)
                await db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
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
                (token, now + ttl, now),
            )
            return cursor.rowcount == 1

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        async with self._session() as db:
            rows = await db.execute_fetchall(
                "SELECT role, text, at, user_id, user_name, message_id FROM turns"
                f" WHERE conv = ? AND {_LIVE} ORDER BY id DESC LIMIT ?",
                (key.id, key.id, self._clock(), limit),
            )
        turns = [
            Turn(role=_role(r[0]), text=r[1], at=r[2], user_id=r[3], user_name=r[4], message_id=r[5])
            for r in rows
        ]
        turns.reverse()
        return turns

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        if not turns:
            return
        now, conv = self._clock(), key.id
        rows = [(conv, t.role, t.text, t.at, t.user_id, t.user_name, t.message_id) for t in turns]
        async with self._transaction() as db:
            # A conversation whose time ran out starts afresh instead of reviving unpurged turns.
            await db.execute(f"DELETE FROM turns WHERE conv = ? AND NOT {_LIVE}", (conv, conv, now))
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
        if now - self._purged_at >= PURGE_EVERY:
            await self.purge()

    async def clear(self, key: ConversationKey) -> None:
        async with self._transaction() as db:
            for table in ("turns", "conversations", "pending"):
                await db.execute(f"DELETE FROM {table} WHERE conv = ?", (key.id,))

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        removed = 0
        async with self._transaction() as db:
            # Expired rows go first, so the count covers only what was still remembered.
            await self._purge(db, self._clock())
            convs = await db.execute_fetchall(
                "SELECT DISTINCT t.conv FROM turns t JOIN conversations c ON c.conv = t.conv"
                " WHERE c.platform = ? AND c.tenant = ? AND t.user_id = ?",
                (platform, tenant, user_id),
            )
            for (conv,) in convs:
                shared = await db.execute_fetchall(
                    "SELECT 1 FROM turns WHERE conv = ? AND role = 'user' AND user_id <> ? LIMIT 1",
                    (conv, user_id),
                )
                if shared:
                    cursor = await db.execute(
                        f"DELETE FROM turns WHERE id IN ({_USER_TURNS})", (conv, user_id, user_id)
                    )
                    removed += cursor.rowcount
                    continue
                for table in ("turns", "pending"):
                    cursor = await db.execute(f"DELETE FROM {table} WHERE conv = ?", (conv,))
                    removed += cursor.rowcount
                await db.execute("DELETE FROM conversations WHERE conv = ?", (conv,))
        return removed

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        async with self._session() as db:
            await db.execute(
                "INSERT INTO pending (conv, text, expires_at) VALUES (?, ?, ?) ON CONFLICT (conv)"
                " DO UPDATE SET text = excluded.text, expires_at = excluded.expires_at",
                (key.id, text, self._clock() + ttl),
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
        for statement in (
            "DELETE FROM turns WHERE conv IN (SELECT conv FROM conversations WHERE expires_at <= ?)",
            "DELETE FROM conversations WHERE expires_at <= ?",
            "DELETE FROM pending WHERE expires_at <= ?",
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
