"""Slack messages and slash commands as job targets (JSON-safe) and back. Pure functions.

A target never holds what the person wrote: the job's ``Inbound`` carries the text, masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from adapters.slack.translate import SlackMessage, SlashCommand, command_word
from core.types import ConversationKey, Inbound

__all__ = [
    "command_inbound",
    "from_command_target",
    "from_message_target",
    "to_command_target",
    "to_message_target",
]

_KINDS = ("mention", "direct", "follow_up")


def to_message_target(message: SlackMessage) -> dict[str, Any]:
    """Where an answer to ``message`` goes, without its text."""
    target = asdict(message)
    del target["text"]
    target["message_kind"] = target.pop("kind")
    return {"kind": "message", **target}


def from_message_target(target: Mapping[str, Any], *, text: str) -> SlackMessage:
    """The message a target describes, with ``text`` (the job's masked text).

    Raises:
        ValueError: not a message target.
    """
    kind = target.get("message_kind")
    if target.get("kind") != "message" or kind not in _KINDS:
        raise ValueError("not a Slack message target")
    values = {
        f.name: str(target.get(f.name, "")) for f in fields(SlackMessage) if f.name not in ("kind", "text")
    }
    return SlackMessage(kind=kind, text=text, **values)


def to_command_target(command: SlashCommand) -> dict[str, Any]:
    """Where the answer to a slash command goes; the argument is kept only as the command word."""
    target: dict[str, Any] = {"kind": "command", **asdict(command)}
    target["text"] = command_word(command.text)
    return target


def from_command_target(target: Mapping[str, Any]) -> SlashCommand:
    """The slash command a target describes (its text is the command word).

    Raises:
        ValueError: not a command target.
    """
    if target.get("kind") != "command":
        raise ValueError("not a Slack command target")
    return SlashCommand(**{f.name: str(target.get(f.name, "")) for f in fields(SlashCommand)})


def command_inbound(command: SlashCommand, *, bot: str) -> Inbound:
    """The engine's view of a slash command: its command word, in the channel's conversation."""
    key = ConversationKey("slack", command.tenant, command.channel, bot=bot)
    message_id = f"command:{command.trigger_id or command.channel}"
    return Inbound(key=key, message_id=message_id, user_id=command.user, text=command_word(command.text))
