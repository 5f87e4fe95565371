"""Fakes for unit tests of the engine and the doors: an in-memory store and a scripted LLM."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from core.errors import LLMError
from core.locks import KeyedLocks
from core.memory.base import PENDING_SEPARATOR, ConversationExport, Remembered, UserExport, answered_by
from core.types import ChatMessage, ConversationKey, Fact, StoredTurn, Summary, Turn, UserKey

__all__ = ["InMemoryStore", "ScriptedLLM"]


class InMemoryStore:
    """The Store protocol in plain dicts; no expiry (tests that need it use the real stores)."""

    def __init__(self) -> None:
        self.stored: dict[str, list[StoredTurn]] = defaultdict(list)
        self.summaries: dict[str, Summary] = {}
        self.people: dict[UserKey, list[Fact]] = defaultdict(list)
        self.claims: set[str] = set()
        self.pending: dict[str, str] = {}
        self._seq: dict[str, int] = defaultdict(int)
        self._locks = KeyedLocks()

    @property
    def turns(self) -> dict[str, list[Turn]]:
        """Every conversation's turns, by conversation id."""
        return defaultdict(list, {conv: [t.turn for t in turns] for conv, turns in self.stored.items()})

    async def claim(self, token: str, *, ttl: float) -> bool:
        if token in self.claims:
            return False
        self.claims.add(token)
        return True

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        return [t.turn for t in self.stored[key.id][-limit:]] if limit > 0 else []

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        for turn in turns:
            self._seq[key.id] += 1
            self.stored[key.id].append(StoredTurn(seq=self._seq[key.id], turn=turn))

    async def turns_after(self, key: ConversationKey, *, seq: int) -> list[StoredTurn]:
        return [t for t in self.stored[key.id] if t.seq > seq]

    async def summary(self, key: ConversationKey) -> Summary:
        return self.summaries.get(key.id, Summary())

    async def save_summary(
        self, key: ConversationKey, summary: Summary, *, replaces: Summary, folded: Sequence[StoredTurn]
    ) -> bool:
        if self.summaries.get(key.id, Summary()) != replaces:
            return False
        if any(t not in self.stored[key.id] for t in folded):
            return False
        self.summaries[key.id] = summary
        return True

    async def remember(self, user: UserKey, text: str, *, limit: int, retention: float) -> Remembered:
        known = self.people[user]
        if any(f.text == text for f in known):
            return Remembered.DUPLICATE
        if len(known) >= limit:
            return Remembered.FULL
        known.append(Fact(text=text, at=0.0))
        return Remembered.ADDED

    async def facts(self, user: UserKey) -> list[Fact]:
        return list(self.people[user])

    async def forget_fact(self, user: UserKey, number: int) -> Fact | None:
        known = self.people[user]
        return known.pop(number - 1) if 1 <= number <= len(known) else None

    async def clear(self, key: ConversationKey) -> None:
        for table in (self.stored, self.summaries, self.pending):
            table.pop(key.id, None)

    def _mine(self, conv: str, user_id: str) -> tuple[bool, set[int]]:
        turns = [t.turn for t in self.stored[conv]]
        shared = any(t.role == "user" and t.user_id != user_id for t in turns)
        return shared, answered_by(turns, user_id)

    def _convs(self, platform: str, tenant: str, user_id: str) -> list[str]:
        return [
            conv
            for conv, turns in self.stored.items()
            if (k := ConversationKey.from_id(conv)).platform == platform
            and k.tenant == tenant
            and any(t.turn.user_id == user_id for t in turns)
        ]

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        removed = 0
        for conv in self._convs(platform, tenant, user_id):
            shared, mine = self._mine(conv, user_id)
            removed += len(mine) + int(self.summaries.pop(conv, None) is not None)
            if shared:
                self.stored[conv] = [t for i, t in enumerate(self.stored[conv]) if i not in mine]
            else:
                removed += (
                    len(self.stored.pop(conv)) - len(mine) + int(self.pending.pop(conv, None) is not None)
                )
        for user in [
            u for u in self.people if (u.platform, u.tenant, u.user_id) == (platform, tenant, user_id)
        ]:
            removed += len(self.people.pop(user))
        return removed

    async def export_user(self, *, platform: str, tenant: str, user_id: str) -> UserExport:
        conversations = []
        for conv in self._convs(platform, tenant, user_id):
            shared, mine = self._mine(conv, user_id)
            turns = tuple(self.stored[conv][i] for i in sorted(mine))
            summary = None if shared else self.summaries.get(conv)
            conversations.append(
                ConversationExport(
                    key=ConversationKey.from_id(conv), shared=shared, turns=turns, summary=summary
                )
            )
        facts = tuple(
            (u.bot, f)
            for u, known in self.people.items()
            if (u.platform, u.tenant, u.user_id) == (platform, tenant, user_id)
            for f in known
        )
        return UserExport(conversations=tuple(conversations), facts=facts)

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        kept = self.pending.get(key.id)
        self.pending[key.id] = text if kept is None else kept + PENDING_SEPARATOR + text

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
            to hold an answer "in flight" without sleeping); ``called`` waits until it is asked.
        fail_with: raise this error (after ``fail_after`` deltas) instead of finishing.
    """

    def __init__(self, answer: str | Script = "네, 알겠어요.", *, chunk: int = 4) -> None:
        self._answer = answer
        self._chunk = chunk
        self.calls: list[list[ChatMessage]] = []
        self.gate: asyncio.Event | None = None
        self.fail_with: LLMError | None = None
        self.fail_after = 0
        self._asked = asyncio.Event()

    async def called(self, times: int = 1) -> None:
        """Wait until the model has been asked ``times`` times in all."""
        while len(self.calls) < times:
            self._asked.clear()
            await self._asked.wait()

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        self._asked.set()
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
