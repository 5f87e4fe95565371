"""Value types that cross every seam of dari: frozen, slotted, platform-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, unquote

__all__ = [
    "ChatMessage",
    "ConversationKey",
    "Fact",
    "Inbound",
    "Role",
    "StoredTurn",
    "Summary",
    "Turn",
    "UserKey",
]

Role = Literal["user", "assistant"]


def _part(value: str) -> str:
    # Platform ids contain ':' and ';' (Teams "19:...;messageid=..."); quote them so that
    # the joined id is unambiguous and safe inside Redis keys and SQLite rows.
    return quote(value, safe="@._-=")


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives: one memory, one queue of turns.

    Attributes:
        platform: "kakao", "slack", "teams" or "web".
        bot: the bot file (``bots/<bot>.toml``) that answers.
        tenant: the platform's isolation unit: Slack enterprise/team, Teams tenant, Kakao bot id.
        conversation: the platform's chat id (Slack channel, Teams conversation, Kakao user).
        thread: a thread inside that chat, or "".
    """

    platform: str
    tenant: str
    conversation: str
    thread: str = ""
    bot: str = "default"

    @property
    def id(self) -> str:
        """One canonical string, used as the storage key and in logs."""
        parts = [self.platform, self.bot, self.tenant, self.conversation]
        if self.thread:
            parts.append(self.thread)
        return ":".join(_part(p) for p in parts)

    def __str__(self) -> str:
        return self.id

    @classmethod
    def from_id(cls, value: str) -> ConversationKey:
        """The key whose ``id`` is ``value`` (stores keep only the id; exports need the parts).

        Raises:
            ValueError: ``value`` is not an id made by ``ConversationKey.id``.
        """
        parts = [unquote(part) for part in value.split(":")]
        if len(parts) not in (4, 5):
            raise ValueError(f"not a conversation id: {value!r}")
        platform, bot, tenant, conversation = parts[:4]
        thread = parts[4] if len(parts) == 5 else ""
        return cls(platform=platform, tenant=tenant, conversation=conversation, thread=thread, bot=bot)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a person, already translated from its platform.

    Attributes:
        key: the conversation it belongs to.
        message_id: the platform's id for this message; a second delivery with the same id
            is a duplicate.
        user_id: the sender, as the platform names them (scoped to platform and tenant).
        text: what they wrote, with the bot's own mention removed.
        user_name: a display name for group prompts, or "".
        is_direct: True in a 1:1 chat with the bot, False in channels and group chats.
        received_at: when the platform delivered it.
    """

    key: ConversationKey
    message_id: str
    user_id: str
    text: str
    user_name: str = ""
    is_direct: bool = True
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored utterance of a conversation. Text is stored already masked."""

    role: Role
    text: str
    at: float
    user_id: str = ""
    user_name: str = ""
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of an LLM prompt (Chat Completions shape)."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """A turn as a store numbers it: ``seq`` grows with every turn of a conversation, never reused
    while the conversation lives, so a summary can say up to which turn it has folded."""

    seq: int
    turn: Turn


@dataclass(frozen=True, slots=True)
class Summary:
    """The rolling summary of a conversation's older turns (masked, in Korean).

    Attributes:
        text: the summary, or "" when nothing was folded yet.
        upto: the ``seq`` of the last turn folded into it (0: none).
    """

    text: str = ""
    upto: int = 0


@dataclass(frozen=True, slots=True)
class UserKey:
    """Whose personal memory: one person, as one bot on one platform and tenant knows them.

    The same person has other ids on other platforms (and on each Kakao bot), so nothing here
    links them; a fact told to one bot is never seen by another.
    """

    platform: str
    tenant: str
    user_id: str
    bot: str = "default"

    @property
    def id(self) -> str:
        """One canonical string for storage keys and logs (parts quoted as in ``ConversationKey``)."""
        return ":".join(_part(p) for p in (self.platform, self.bot, self.tenant, self.user_id))


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing a user asked the bot to remember about them (masked)."""

    text: str
    at: float
