"""The memory port: what the engine needs from a store, whatever keeps the data.

Three kinds of data, each with its own scope (docs/memory.md draws them):

- a conversation (``ConversationKey``): its turns, its rolling summary, its pending answer;
- a person as one bot knows them (``UserKey``): the facts they asked it to remember;
- dedupe marks, kept only as digests so that no identifier sits in them.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from core.types import ConversationKey, Fact, StoredTurn, Summary, Turn, UserKey

__all__ = [
    "MAX_FACTS",
    "MAX_FACT_CHARS",
    "MAX_TURN_CHARS",
    "PENDING_SEPARATOR",
    "ConversationExport",
    "Remembered",
    "Store",
    "UserExport",
    "answered_by",
    "seen_digest",
]

# Bounds on what one conversation or one person can make a store hold (the engine applies them).
MAX_TURN_CHARS = 8000  # a longer message or answer is stored cut; prompts replay far less anyway
MAX_FACTS = 30  # facts per person and bot
MAX_FACT_CHARS = 100  # "저는 재무팀이에요" is 9; a fact is a line, not a document
PENDING_SEPARATOR = "\n\n"  # between kept answers, as the user reads them


class Remembered(enum.Enum):
    """What ``Store.remember`` did with a fact."""

    ADDED = "added"
    DUPLICATE = "duplicate"  # the same text is already remembered; nothing changed
    FULL = "full"  # the person already has ``limit`` facts; nothing changed


@dataclass(frozen=True, slots=True)
class ConversationExport:
    """One conversation as a data-subject export shows it.

    Attributes:
        key: the conversation.
        shared: other people wrote in it too.
        turns: the user's own turns and the answers to them, oldest first.
        summary: the rolling summary of a private conversation; None for a shared one, whose
            summary mixes other people's words (it is dropped when the user is forgotten).
    """

    key: ConversationKey
    shared: bool
    turns: tuple[StoredTurn, ...]
    summary: Summary | None


@dataclass(frozen=True, slots=True)
class UserExport:
    """Everything a store keeps about one user in one tenant (every bot)."""

    conversations: tuple[ConversationExport, ...] = ()
    facts: tuple[tuple[str, Fact], ...] = ()  # (bot, fact), oldest first per bot

    @property
    def items(self) -> int:
        """Turns, facts and summaries held: 0 means nothing of the user is left."""
        summaries = sum(1 for c in self.conversations if c.summary is not None and c.summary.text)
        return sum(len(c.turns) for c in self.conversations) + len(self.facts) + summaries


def seen_digest(token: str) -> str:
    """What a store keeps of a dedupe token: chat and message ids carry user ids (a Kakao chat
    is its user), and a mark that outlives an erasure must not name anyone."""
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def answered_by(turns: Sequence[Turn], user_id: str) -> set[int]:
    """Indexes of the user's turns and of the assistant turns that directly answer them."""
    found: set[int] = set()
    for i, turn in enumerate(turns):
        if turn.user_id != user_id:
            continue
        found.add(i)
        if turn.role == "user" and i + 1 < len(turns) and turns[i + 1].role == "assistant":
            found.add(i + 1)
    return found


class Store(Protocol):
    """Conversation memory, personal facts, dedupe marks and pending answers.

    Every method is safe to call concurrently from many tasks. A conversation's data (turns,
    summary, pending answer) expires ``retention`` seconds after its last ``append``; a person's
    facts expire ``retention`` seconds after they last wrote to that bot.
    """

    async def claim(self, token: str, *, ttl: float) -> bool:
        """Mark ``token`` (platform + message id) as seen; False when it was already seen."""
        ...

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        """The last ``limit`` turns of a conversation, oldest first."""
        ...

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        """Add turns (numbered in order), keep at most the store's cap, refresh the conversation's
        expiry and that of the writers' facts with this bot."""
        ...

    async def turns_after(self, key: ConversationKey, *, seq: int) -> list[StoredTurn]:
        """The stored turns numbered above ``seq``, oldest first (for folding into the summary)."""
        ...

    async def summary(self, key: ConversationKey) -> Summary:
        """The conversation's rolling summary (empty when there is none)."""
        ...

    async def save_summary(
        self, key: ConversationKey, summary: Summary, *, replaces: Summary, folded: Sequence[StoredTurn]
    ) -> bool:
        """Store ``summary`` if nothing moved under the summariser; True when stored.

        It is stored only while the current summary still equals ``replaces`` and every turn in
        ``folded`` is still stored exactly as read: a reset, an erasure or another summariser in
        between makes it a no-op, so erased words cannot come back through a late summary.
        It expires with the conversation.
        """
        ...

    async def remember(self, user: UserKey, text: str, *, limit: int, retention: float) -> Remembered:
        """Add a fact to the user's personal memory, unless it is there or ``limit`` is reached."""
        ...

    async def facts(self, user: UserKey) -> list[Fact]:
        """The user's facts, oldest first."""
        ...

    async def forget_fact(self, user: UserKey, number: int) -> Fact | None:
        """Delete the ``number``-th fact (1-based, as ``facts`` lists them); None if there is none."""
        ...

    async def clear(self, key: ConversationKey) -> None:
        """Forget one conversation: turns, summary, pending answer (the reset command)."""
        ...

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        """Erase everything stored about one user in one tenant; returns items removed.

        Conversations where the user was the only person are deleted whole (turns, summary,
        pending answer); in shared conversations their turns and the answers to them are removed
        and the summary, which may retell them, is dropped. Their facts with every bot go too.
        """
        ...

    async def export_user(self, *, platform: str, tenant: str, user_id: str) -> UserExport:
        """Everything stored about one user in one tenant, for a data-subject request."""
        ...

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        """Keep a finished answer that could not be delivered yet, after any kept before it
        (two slow answers in a row are both kept); ``ttl`` applies to all of them from now."""
        ...

    async def pop_pending(self, key: ConversationKey) -> str | None:
        """Take (and remove) the kept answers of a conversation, oldest first, joined by
        ``PENDING_SEPARATOR``; None when there are none."""
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
