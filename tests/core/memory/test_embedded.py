"""What only the SQLite store promises: a file that survives restarts and does not grow forever."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from core.errors import ConfigError, StoreError
from core.memory import EmbeddedStore
from core.memory.embedded import PURGE_EVERY
from core.types import ConversationKey, Turn
from tests.support.redis import FakeClock

KEY = ConversationKey(platform="kakao", tenant="B1", conversation="K-user-1")
OTHER = ConversationKey(platform="kakao", tenant="B1", conversation="K-user-2")


def said(text: str) -> Turn:
    return Turn(role="user", text=text, at=1.0, user_id="K-user-1")


async def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    async with aiosqlite.connect(path) as db:
        return [tuple(row) for row in await db.execute_fetchall(sql)]


async def test_open_creates_the_directory_and_one_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "var" / "dari" / "memory.sqlite3"
    store = await EmbeddedStore.open(path=path)
    try:
        await store.append(KEY, [said("안녕")], retention=60)
        assert path.is_file()
        assert store.path == path
        assert await rows(path, "PRAGMA journal_mode") == [("wal",)]
    finally:
        await store.close()


async def test_everything_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "dari.sqlite3"
    first = await EmbeddedStore.open(path=path, clock=clock)
    await first.append(KEY, [said("기억해 주세요"), said("두 번째")], retention=3600)
    await first.put_pending(KEY, "보류된 답", ttl=60)
    assert await first.claim("kakao:default:B1:m1", ttl=60) is True
    await first.close()

    second = await EmbeddedStore.open(path=path, clock=clock)
    try:
        assert [t.text for t in await second.history(KEY, limit=10)] == ["기억해 주세요", "두 번째"]
        assert await second.pop_pending(KEY) == "보류된 답"
        assert await second.claim("kakao:default:B1:m1", ttl=60) is False
    finally:
        await second.close()


async def test_expired_rows_are_hidden_at_once_and_purged_at_most_once_a_minute(
    embedded_store: EmbeddedStore, clock: FakeClock
) -> None:
    path = embedded_store.path
    await embedded_store.append(KEY, [said("곧 사라질 말"), said("이것도")], retention=30)
    await embedded_store.claim("kakao:default:B1:m1", ttl=30)
    await embedded_store.put_pending(KEY, "답", ttl=30)
    clock.advance(40)
    assert await embedded_store.history(KEY, limit=10) == []
    await embedded_store.append(OTHER, [said("새 대화")], retention=3600)
    # Less than a minute since the last purge (at open): still on disk, though invisible.
    assert await rows(path, "SELECT count(*) FROM turns") == [(3,)]

    clock.advance(PURGE_EVERY - 40)
    await embedded_store.append(OTHER, [said("또")], retention=3600)
    assert await rows(path, "SELECT text FROM turns ORDER BY id") == [("새 대화",), ("또",)]
    assert await rows(path, "SELECT conv FROM conversations") == [(OTHER.id,)]
    assert await rows(path, "SELECT count(*) FROM seen") == [(0,)]
    assert await rows(path, "SELECT count(*) FROM pending") == [(0,)]


async def test_purge_removes_what_expired_and_counts_it(
    embedded_store: EmbeddedStore, clock: FakeClock
) -> None:
    await embedded_store.append(KEY, [said("a"), said("b")], retention=10)
    await embedded_store.append(OTHER, [said("c")], retention=100)
    clock.advance(50)
    assert await embedded_store.purge() == 2 + 1  # two turns and their conversation row
    assert await rows(embedded_store.path, "SELECT conv FROM participants") == [(OTHER.id,)]
    assert [t.text for t in await embedded_store.history(OTHER, limit=10)] == ["c"]
    assert await embedded_store.purge() == 0


# The schema dari 0.1 wrote (PRAGMA user_version 1), to prove the upgrade.
V1_SCHEMA = """
CREATE TABLE conversations (
    conv TEXT PRIMARY KEY, platform TEXT NOT NULL, tenant TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX conversations_by_expiry ON conversations (expires_at);
CREATE TABLE turns (
    id INTEGER PRIMARY KEY, conv TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, at REAL NOT NULL,
    user_id TEXT NOT NULL, user_name TEXT NOT NULL, message_id TEXT NOT NULL
);
CREATE INDEX turns_by_conv ON turns (conv, id);
CREATE INDEX turns_by_user ON turns (user_id);
CREATE TABLE pending (conv TEXT PRIMARY KEY, text TEXT NOT NULL, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE seen (token TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX seen_by_expiry ON seen (expires_at);
PRAGMA user_version=1;
"""


async def test_a_version_1_file_is_upgraded_in_place(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "dari.sqlite3"
    async with aiosqlite.connect(path) as db:
        await db.executescript(V1_SCHEMA)
        await db.execute("INSERT INTO conversations VALUES (?, 'kakao', 'B1', ?)", (KEY.id, clock.now + 3600))
        await db.executemany(
            "INSERT INTO turns (conv, role, text, at, user_id, user_name, message_id)"
            " VALUES (?, ?, ?, 1.0, ?, '', '')",
            [(KEY.id, "user", "예전 질문", "K-user-1"), (KEY.id, "assistant", "예전 답", "")],
        )
        await db.commit()
    store = await EmbeddedStore.open(path=path, clock=clock)
    try:
        assert [t.text for t in await store.history(KEY, limit=10)] == ["예전 질문", "예전 답"]
        await store.append(KEY, [said("새 질문")], retention=3600)
        assert [t.seq for t in await store.turns_after(KEY, seq=0)] == [1, 2, 3]
        assert await rows(path, "PRAGMA user_version") == [(2,)]
        assert await rows(path, "SELECT conv, user_id FROM participants") == [(KEY.id, "K-user-1")]
        # AUTOINCREMENT now: a number freed by a reset is never given again.
        await store.clear(KEY)
        await store.append(KEY, [said("다시")], retention=3600)
        assert [t.seq for t in await store.turns_after(KEY, seq=0)] == [4]
        indexes = {r[0] for r in await rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"turns_by_conv", "turns_by_user", "participants_by_user", "facts_by_user"} <= indexes
    finally:
        await store.close()


async def test_a_file_from_a_newer_dari_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dari.sqlite3"
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer dari"):
        await EmbeddedStore.open(path=path)


async def test_a_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path / "dari.sqlite3")
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(StoreError):
        await store.history(KEY, limit=5)
    with pytest.raises(StoreError):
        await store.ping()


def test_a_cap_below_one_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        EmbeddedStore(path=tmp_path / "x.sqlite3", max_turns=0)
    assert caught.value.field == "max_turns"
