"""The embedded store's operations on people: personal facts, erasure and export.

Each function runs on a connection the caller holds, inside the caller's transaction where
it writes. ``now`` is the store's clock: rows whose time has passed are treated as gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiosqlite

from core.memory.base import ConversationExport, Remembered, UserExport, answered_by
from core.types import ConversationKey, Fact, Role, StoredTurn, Summary, Turn, UserKey

__all__ = ["TURN_COLUMNS", "export_user", "facts", "forget_fact", "forget_user", "remember", "turn_of"]

_OWNER = "platform = ? AND tenant = ? AND bot = ? AND user_id = ?"
TURN_COLUMNS = "id, role, text, at, user_id, user_name, message_id"


def _owner(user: UserKey) -> tuple[str, str, str, str]:
    return (user.platform, user.tenant, user.bot, user.user_id)


def _role(value: Any) -> Role:
    if value == "user":
        return "user"
    if value == "assistant":
        return "assistant"
    raise ValueError(f"unknown role in the SQLite store: {value!r}")


def turn_of(row: Iterable[Any]) -> StoredTurn:
    """A ``StoredTurn`` from a row of ``TURN_COLUMNS`` (the row id is the turn's seq)."""
    seq, role, text, at, user_id, user_name, message_id = row
    return StoredTurn(
        seq=int(seq),
        turn=Turn(
            role=_role(role), text=text, at=at, user_id=user_id, user_name=user_name, message_id=message_id
        ),
    )


async def remember(
    db: aiosqlite.Connection, user: UserKey, text: str, *, limit: int, expires_at: float, now: float
) -> Remembered:
    # Expired rows must not come back to life when the expiry below is refreshed.
    await db.execute(f"DELETE FROM facts WHERE {_OWNER} AND expires_at <= ?", (*_owner(user), now))
    known = [r[0] for r in await db.execute_fetchall(f"SELECT text FROM facts WHERE {_OWNER}", _owner(user))]
    if text in known:
        outcome = Remembered.DUPLICATE
    elif len(known) >= limit:
        return Remembered.FULL
    else:
        await db.execute(
            "INSERT INTO facts (platform, tenant, bot, user_id, text, at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*_owner(user), text, now, expires_at),
        )
        outcome = Remembered.ADDED
    # A person's facts share one expiry: retention after their last word to this bot.
    await db.execute(f"UPDATE facts SET expires_at = ? WHERE {_OWNER}", (expires_at, *_owner(user)))
    return outcome


async def facts(db: aiosqlite.Connection, user: UserKey, *, now: float) -> list[Fact]:
    rows = await db.execute_fetchall(
        f"SELECT text, at FROM facts WHERE {_OWNER} AND expires_at > ? ORDER BY id", (*_owner(user), now)
    )
    return [Fact(text=r[0], at=r[1]) for r in rows]


async def forget_fact(db: aiosqlite.Connection, user: UserKey, number: int, *, now: float) -> Fact | None:
    if number < 1:
        return None
    rows = list(
        await db.execute_fetchall(
            f"SELECT id, text, at FROM facts WHERE {_OWNER} AND expires_at > ? ORDER BY id LIMIT 1 OFFSET ?",
            (*_owner(user), now, number - 1),
        )
    )
    if not rows:
        return None
    await db.execute("DELETE FROM facts WHERE id = ?", (rows[0][0],))
    return Fact(text=rows[0][1], at=rows[0][2])


async def _conversations(
    db: aiosqlite.Connection, platform: str, tenant: str, user_id: str, now: float
) -> list[str]:
    rows = await db.execute_fetchall(
        "SELECT p.conv FROM participants p JOIN conversations c ON c.conv = p.conv"
        " WHERE c.platform = ? AND c.tenant = ? AND p.user_id = ? AND c.expires_at > ? ORDER BY p.conv",
        (platform, tenant, user_id, now),
    )
    return [str(r[0]) for r in rows]


async def _turns(db: aiosqlite.Connection, conv: str) -> list[StoredTurn]:
    rows = await db.execute_fetchall(f"SELECT {TURN_COLUMNS} FROM turns WHERE conv = ? ORDER BY id", (conv,))
    return [turn_of(r) for r in rows]


def _shared(turns: list[StoredTurn], user_id: str) -> bool:
    return any(t.turn.role == "user" and t.turn.user_id != user_id for t in turns)


async def forget_user(
    db: aiosqlite.Connection, *, platform: str, tenant: str, user_id: str, now: float
) -> int:
    removed = 0
    for conv in await _conversations(db, platform, tenant, user_id, now):
        turns = await _turns(db, conv)
        if _shared(turns, user_id):
            mine = [turns[i].seq for i in sorted(answered_by([t.turn for t in turns], user_id))]
            await db.executemany("DELETE FROM turns WHERE id = ?", [(seq,) for seq in mine])
            removed += len(mine)
            await db.execute("DELETE FROM participants WHERE conv = ? AND user_id = ?", (conv, user_id))
            # The summary may retell what they said; it is dropped, and the next fold starts afresh
            # from the turns still stored (docs/memory.md).
            cursor = await db.execute("DELETE FROM summaries WHERE conv = ?", (conv,))
            removed += cursor.rowcount
            continue
        for table in ("turns", "pending", "summaries"):
            cursor = await db.execute(f"DELETE FROM {table} WHERE conv = ?", (conv,))
            removed += cursor.rowcount
        for table in ("participants", "conversations"):
            await db.execute(f"DELETE FROM {table} WHERE conv = ?", (conv,))
    cursor = await db.execute(
        "DELETE FROM facts WHERE platform = ? AND tenant = ? AND user_id = ?", (platform, tenant, user_id)
    )
    return removed + cursor.rowcount


async def export_user(
    db: aiosqlite.Connection, *, platform: str, tenant: str, user_id: str, now: float
) -> UserExport:
    conversations: list[ConversationExport] = []
    for conv in await _conversations(db, platform, tenant, user_id, now):
        turns = await _turns(db, conv)
        shared = _shared(turns, user_id)
        mine = tuple(turns[i] for i in sorted(answered_by([t.turn for t in turns], user_id)))
        summary = None
        if not shared:
            rows = list(await db.execute_fetchall("SELECT text, upto FROM summaries WHERE conv = ?", (conv,)))
            summary = Summary(text=rows[0][0], upto=rows[0][1]) if rows else None
        if mine or summary is not None:
            conversations.append(
                ConversationExport(
                    key=ConversationKey.from_id(conv), shared=shared, turns=mine, summary=summary
                )
            )
    fact_rows = await db.execute_fetchall(
        "SELECT bot, text, at FROM facts WHERE platform = ? AND tenant = ? AND user_id = ? AND expires_at > ?"
        " ORDER BY bot, id",
        (platform, tenant, user_id, now),
    )
    return UserExport(
        conversations=tuple(conversations), facts=tuple((r[0], Fact(text=r[1], at=r[2])) for r in fact_rows)
    )
