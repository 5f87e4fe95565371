"""Operator tools for data-subject requests: ``dari export-user`` and ``dari forget-user``.

Both open the configured store (Redis when ``REDIS_URL`` is set, else the embedded SQLite file
under ``DARI_DATA_DIR``), do their work and close it. A user is named as the platform knows
them: platform, tenant (Slack team, Teams tenant, Kakao bot id) and user id; docs/memory.md
says where an operator finds each.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from adapters.server import open_store
from adapters.settings import Settings
from core.errors import ErasureIncomplete
from core.memory.base import ConversationExport, UserExport
from core.types import Fact, StoredTurn

__all__ = ["export_user", "forget_user"]

log = logging.getLogger(__name__)

EXPORT_FORMAT = "dari.user-export.v1"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _turn(stored: StoredTurn) -> dict[str, Any]:
    turn = stored.turn
    return {
        "seq": stored.seq,
        "role": turn.role,
        "text": turn.text,
        "at": _when(turn.at),
        "user_name": turn.user_name,
        "message_id": turn.message_id,
    }


def _conversation(conversation: ConversationExport) -> dict[str, Any]:
    key = conversation.key
    summary = conversation.summary
    return {
        "id": key.id,
        "platform": key.platform,
        "tenant": key.tenant,
        "bot": key.bot,
        "conversation": key.conversation,
        "thread": key.thread,
        "shared": conversation.shared,
        "summary": None if summary is None else summary.text,
        "turns": [_turn(t) for t in conversation.turns],
    }


def _fact(bot: str, fact: Fact) -> dict[str, Any]:
    return {"bot": bot, "text": fact.text, "at": _when(fact.at)}


def to_json(data: UserExport, *, platform: str, tenant: str, user_id: str, bot: str | None) -> dict[str, Any]:
    """The export as JSON-ready data; with ``bot``, only that bot's conversations and facts."""
    conversations = [c for c in data.conversations if bot is None or c.key.bot == bot]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "subject": {"platform": platform, "tenant": tenant, "user_id": user_id, "bot": bot},
        "notes": (
            "Texts are stored masked: personal identifiers appear as placeholders such as [전화번호]. "
            "Shared conversations list only this person's messages and the answers to them; their "
            "summaries mix other people's words and are left out."
        ),
        "conversations": [_conversation(c) for c in conversations],
        "facts": [_fact(b, f) for b, f in data.facts if bot is None or b == bot],
    }


async def export_user(
    settings: Settings, *, platform: str, tenant: str, user_id: str, bot: str | None = None
) -> dict[str, Any]:
    """Everything the store keeps about one user in one tenant, as JSON-serialisable data.

    Args:
        settings: where the store is.
        platform: "kakao", "slack", "teams" or "web".
        tenant: the platform's tenant (Slack team id, Teams tenant id, Kakao bot id).
        user_id: the user's id on that platform.
        bot: only this bot's data (``bots/<bot>.toml``); all bots when None.

    Raises:
        StoreError: the store cannot be opened or read.
    """
    store, _ = await open_store(settings)
    try:
        data = await store.export_user(platform=platform, tenant=tenant, user_id=user_id)
    finally:
        await store.close()
    return to_json(data, platform=platform, tenant=tenant, user_id=user_id, bot=bot)


async def forget_user(settings: Settings, *, platform: str, tenant: str, user_id: str) -> int:
    """Erase one user's data in one tenant (every bot), then verify that nothing is left.

    Returns:
        How many items (turns, answers to them, summaries, pending answers, facts) were removed.

    Raises:
        ErasureIncomplete: something of the user was still found after erasing (``remaining``).
        StoreError: the store cannot be opened or written.
    """
    store, kind = await open_store(settings)
    try:
        removed = await store.forget_user(platform=platform, tenant=tenant, user_id=user_id)
        left = await store.export_user(platform=platform, tenant=tenant, user_id=user_id)
    finally:
        await store.close()
    if left.items:
        raise ErasureIncomplete(
            f"{left.items} items of the user were still found in the {kind} store after erasure",
            remaining=left.items,
        )
    log.info("user data erased by an operator", extra={"items": removed})
    return removed
