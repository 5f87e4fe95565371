"""The embedded store's schema and its upgrades (``PRAGMA user_version`` numbers them).

Tables (every text column already masked):

    conversations  one row per live conversation: platform, tenant, expires_at
    turns          id (the turn's seq: AUTOINCREMENT, never reused), conv, role, text, ...
    summaries      conv -> the rolling summary and the seq of the last turn folded into it
    participants   (conv, user_id): who wrote in a conversation, so erasure finds summaries
                   that may retell a user whose own turns were already trimmed
    pending        conv -> an answer not delivered yet, with its own expiry
    facts          personal memory: platform, tenant, bot, user_id, text, at, expires_at
    seen           sha256 digests of dedupe tokens, with their expiry

Rows of a conversation go with its ``conversations`` row (expiry, reset, erasure).
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from core.errors import StoreError

__all__ = ["SCHEMA_VERSION", "migrate"]

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    conv TEXT PRIMARY KEY, platform TEXT NOT NULL, tenant TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversations_by_expiry ON conversations (expires_at);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT, conv TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,
    at REAL NOT NULL, user_id TEXT NOT NULL, user_name TEXT NOT NULL, message_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_conv ON turns (conv, id);
CREATE INDEX IF NOT EXISTS turns_by_user ON turns (user_id);
CREATE TABLE IF NOT EXISTS pending (conv TEXT PRIMARY KEY, text TEXT NOT NULL, expires_at REAL NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (token TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expires_at);
CREATE TABLE IF NOT EXISTS summaries (conv TEXT PRIMARY KEY, text TEXT NOT NULL, upto INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS participants (
    conv TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (conv, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS participants_by_user ON participants (user_id);
CREATE TABLE IF NOT EXISTS facts (
    id INTEGER PRIMARY KEY, platform TEXT NOT NULL, tenant TEXT NOT NULL, bot TEXT NOT NULL,
    user_id TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS facts_by_user ON facts (platform, tenant, user_id, bot, id);
CREATE INDEX IF NOT EXISTS facts_by_expiry ON facts (expires_at);
"""


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Bring the file to ``SCHEMA_VERSION``; refuse a file from a newer dari."""
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    version = int(rows[0][0])
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer dari (schema {version})")
    # One transaction: executescript would commit statement by statement.
    await db.execute("BEGIN IMMEDIATE")
    try:
        if version == 1:
            # Version 1 turn ids could be reused after deletes; a summary names the last turn it
            # folded by id, so the table is rebuilt with AUTOINCREMENT (indexes go with the old one).
            for statement in ("DROP INDEX turns_by_conv", "DROP INDEX turns_by_user"):
                await db.execute(statement)
            await db.execute("ALTER TABLE turns RENAME TO turns_v1")
        for statement in _statements(_SCHEMA):
            await db.execute(statement)
        if version == 1:
            await db.execute("INSERT INTO turns SELECT * FROM turns_v1")
            await db.execute("DROP TABLE turns_v1")
            # Version 1 knew writers only from their turns.
            await db.execute(
                "INSERT OR IGNORE INTO participants (conv, user_id)"
                " SELECT DISTINCT conv, user_id FROM turns WHERE user_id <> ''"
            )
        await db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
