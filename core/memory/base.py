"""The memory port: what the engine needs from a store, whatever keeps the data."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from core.types import ConversationKey, Turn

__all__ = ["Store"]


class Store(Protocol):
    """Conversation memory, dedupe marks and pending answers.

    Every method is safe to call concurrently from many tasks. Data of a conversation
    expires ``retention`` seconds after its last write.
    """

    async def claim(self, token: str, *, ttl: float) -> bool:
        """Mark ``token`` (platform + message id) as seen; False when it was already seen."""
        ...

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        """The last ``limit`` turns of a conversation, oldest first."""
        ...

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        """Add turns to a conversation, keep at most the store's cap, refresh its expiry."""
        ...

    async def clear(self, key: ConversationKey) -> None:
        """Forget one conversation (the reset command)."""
        ...

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        """Erase everything stored about one user in one tenant; returns items removed.

        Conversations where the user was the only person are deleted whole; in shared
        conversations their turns, and the answers to them, are removed.
        """
        ...

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        """Keep a finished answer that could not be delivered yet."""
        ...

    async def pop_pending(self, key: ConversationKey) -> str | None:
        """Take (and remove) the pending answer of a conversation, if any."""
        ...

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        """Hold a conversation's turn, across processes where the store allows it."""
        ...

    async def ping(self) -> None:
        """Raise ``StoreError`` when the store cannot be used."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...
