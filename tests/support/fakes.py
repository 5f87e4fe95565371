"""Fakes for unit tests of the engine and the doors: an in-memory store and a scripted LLM."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from core.errors import LLMError
from core.locks import KeyedLocks
from core.types import ChatMessage, ConversationKey, Turn

__all__ = ["InMemoryStore", "ScriptedLLM"]


class InMemoryStore:
    """The Store protocol in plain dicts; no expiry (tests that need it use the real stores)."""

    def __init__(self) -> None:
        self.turns: dict[str, list[Turn]] = defaultdict(list)
        self.claims: set[str] = set()
        self.pending: dict[str, str] = {}
        self._locks = KeyedLocks()

    async def claim(self, token: str, *, ttl: float) -> bool:
        if token in self.claims:
            return False
        self.claims.add(token)
        return True

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        return list(self.turns[key.id][-limit:])

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        self.turns[key.id].extend(turns)

    async def clear(self, key: ConversationKey) -> None:
        self.turns.pop(key.id, None)
        self.pending.pop(key.id, None)

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        removed = 0
        for conv, turns in list(self.turns.items()):
            kept = [t for t in turns if t.user_id != user_id]
            removed += len(turns) - len(kept)
            self.turns[conv] = kept
        return removed

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        self.pending[key.id] = text

    async def pop_pending(self, key: ConversationKey) -> str | None:
        return self.pending.pop(key.id, None)

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(("store", key.id))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


Script = Callable[[Sequence[ChatMessage]], str]


class ScriptedLLM:
    """An LLM that answers from a script, records every prompt and can fail or wait on demand.

    Attributes:
        calls: every prompt it was asked, in order.
        gate: when set, each answer waits for this event before its first delta (tests use it
            to hold an answer "in flight" without sleeping).
        fail_with: raise this error (after ``fail_after`` deltas) instead of finishing.
    """

    def __init__(self, answer: str | Script = "네, 알겠어요.", *, chunk: int = 4) -> None:
        self._answer = answer
        self._chunk = chunk
        self.calls: list[list[ChatMessage]] = []
        self.gate: asyncio.Event | None = None
        self.fail_with: LLMError | None = None
        self.fail_after = 0

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        if self.gate is not None:
            await self.gate.wait()
        text = self._answer(messages) if callable(self._answer) else self._answer
        for sent, start in enumerate(range(0, len(text), self._chunk)):
            if self.fail_with is not None and sent >= self.fail_after:
                raise self.fail_with
            yield text[start : start + self._chunk]
        if self.fail_with is not None:
            raise self.fail_with

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
