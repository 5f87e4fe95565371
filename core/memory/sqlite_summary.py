"""The embedded store's rolling summaries: read, and write only if nothing moved meanwhile."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from core.memory.sqlite_people import TURN_COLUMNS, turn_of
from core.types import StoredTurn, Summary

__all__ = ["LIVE", "read_summary", "save_summary"]

LIVE = "EXISTS (SELECT 1 FROM conversations c WHERE c.conv = ? AND c.expires_at > ?)"


async def read_summary(db: aiosqlite.Connection, conv: str, *, now: float) -> Summary:
    rows = list(
        await db.execute_fetchall(
            f"SELECT text, upto FROM summaries WHERE conv = ? AND {LIVE}", (conv, conv, now)
        )
    )
    return Summary(text=rows[0][0], upto=rows[0][1]) if rows else Summary()


async def save_summary(
    db: aiosqlite.Connection,
    conv: str,
    summary: Summary,
    *,
    replaces: Summary,
    folded: Sequence[StoredTurn],
    now: float,
) -> bool:
    """Inside the caller's transaction: compare, then write (see ``Store.save_summary``)."""
    if await read_summary(db, conv, now=now) != replaces:
        return False
    seqs = [t.seq for t in folded]
    stored = await db.execute_fetchall(
        f"SELECT {TURN_COLUMNS} FROM turns WHERE conv = ? AND id IN ({','.join('?' * len(seqs))})"
        f" AND {LIVE} ORDER BY id",
        (conv, *seqs, conv, now),
    )
    if [turn_of(r) for r in stored] != sorted(folded, key=lambda t: t.seq):
        return False
    await db.execute(
        "INSERT INTO summaries (conv, text, upto) VALUES (?, ?, ?) ON CONFLICT (conv)"
        " DO UPDATE SET text = excluded.text, upto = excluded.upto",
        (conv, summary.text, summary.upto),
    )
    return True
