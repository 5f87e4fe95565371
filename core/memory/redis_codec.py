"""Key names and value encodings of the Redis store.

The layout itself is documented in one place, the docstring of ``core/memory/redis.py``;
this module only spells it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, unquote

from core.errors import StoreError
from core.memory.base import seen_digest
from core.types import Fact, StoredTurn, Summary, Turn, UserKey

__all__ = [
    "FACTS_MEMBER",
    "Keys",
    "dump_fact",
    "dump_summary",
    "dump_turn",
    "load_fact",
    "load_summary",
    "load_turn",
    "text",
]

# User-index members that name a bot's facts rather than a conversation. Conversation ids are
# percent-quoted and so never start with '#'.
FACTS_MEMBER = "#facts:"


def _quote(value: str, safe: str = "@._-=") -> str:
    return quote(value, safe=safe)


def text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Keys:
    """The names of every key under one prefix."""

    prefix: str

    def conv(self, conv: str, part: str) -> str:
        return f"{self.prefix}:conv:{{{conv}}}:{part}"

    def user(self, platform: str, tenant: str, user_id: str) -> str:
        return f"{self.prefix}:user:{_quote(platform)}:{_quote(tenant)}:{_quote(user_id)}"

    def user_of(self, user: UserKey) -> str:
        return self.user(user.platform, user.tenant, user.user_id)

    def facts(self, user: UserKey) -> str:
        return f"{self.prefix}:facts:{user.id}"

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    def seen(self, token: str) -> str:
        # In the job stream's Cluster slot: a door claims a message and queues it in one script.
        return f"{self.prefix}:seen:{{{self.jobs}}}:{seen_digest(token)}"

    def job(self, job_id: str) -> str:
        # In the job stream's slot too: a mark is written only while its process holds the job.
        return f"{self.prefix}:job:{{{self.jobs}}}:{_quote(job_id)}"

    def rate(self, scope: str, key: str) -> str:
        return f"{self.prefix}:rate:{_quote(scope)}:{seen_digest(key)}"

    @staticmethod
    def facts_member(bot: str) -> str:
        """The user-index member that says the user has facts with ``bot``."""
        return FACTS_MEMBER + _quote(bot)

    @staticmethod
    def bot_of(member: str) -> str:
        """The bot a ``facts_member`` names."""
        return unquote(member.removeprefix(FACTS_MEMBER))


def _json(value: dict[str, Any]) -> str:
    # Readable UTF-8 (not \\u escapes): a third of the memory for Korean text.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dump_turn(turn: Turn) -> str:
    """A turn as JSON without its seq; the append script writes the seq in front."""
    return _json(asdict(turn))


def load_turn(raw: bytes | str) -> StoredTurn:
    """A turn and its seq from the JSON the append script wrote."""
    try:
        data: dict[str, Any] = json.loads(raw)
        role = data["role"]
        if role != "user" and role != "assistant":
            raise ValueError(f"unknown role {role!r}")
        turn = Turn(
            role=role,
            text=str(data["text"]),
            at=float(data["at"]),
            user_id=str(data.get("user_id", "")),
            user_name=str(data.get("user_name", "")),
            message_id=str(data.get("message_id", "")),
        )
        # Turns written before seqs existed count as 0: never folded, simply aged out.
        return StoredTurn(seq=int(data.get("seq", 0)), turn=turn)
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"unreadable turn in the Redis store: {error}") from error


def dump_summary(summary: Summary) -> str:
    """A summary as JSON."""
    return _json({"text": summary.text, "upto": summary.upto})


def load_summary(raw: bytes | str | None) -> Summary:
    """A summary from JSON; the empty summary when the key is missing."""
    if raw is None:
        return Summary()
    try:
        data: dict[str, Any] = json.loads(raw)
        return Summary(text=str(data["text"]), upto=int(data["upto"]))
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"unreadable summary in the Redis store: {error}") from error


def dump_fact(fact: Fact) -> str:
    """A fact as JSON."""
    return _json({"text": fact.text, "at": fact.at})


def load_fact(raw: bytes | str) -> Fact:
    """A fact from JSON."""
    try:
        data: dict[str, Any] = json.loads(raw)
        return Fact(text=str(data["text"]), at=float(data["at"]))
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"unreadable fact in the Redis store: {error}") from error
