"""Slack events and slash commands <-> core types. Pure functions, no I/O.

Inputs are parsed JSON (or form) bodies. Over HTTP they were checked by ``envelope``;
over Socket Mode they were not, so every field is read defensively: a value of the
wrong type reads as absent.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.types import ConversationKey, Inbound

__all__ = [
    "AssistantThread",
    "SlackMessage",
    "SlashCommand",
    "bot_user_ids",
    "command_word",
    "mentions",
    "plain_text",
    "tenant_of",
    "thread_title",
    "to_assistant_thread",
    "to_command",
    "to_inbound",
    "to_slack_message",
]

PLATFORM = "slack"

# Subtypes that are still a person writing: a reply also sent to the channel, a file with a caption.
_HUMAN_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
_CHANNEL_TYPES = frozenset({"channel", "group", "mpim"})
_MARKUP = re.compile(r"<([^<>]*)>")
_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^<>]*)?>")
_SPACES = re.compile(r"[ \t]+")

MessageKind = Literal["mention", "direct", "follow_up"]


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A person's message the bot may answer.

    Attributes:
        kind: "mention" (the bot is mentioned in a channel), "direct" (a DM or an assistant
            thread) or "follow_up" (a reply in a channel thread, answered only where the bot
            already takes part).
        event_id: the delivery's id, "" over Socket Mode without one.
        tenant: enterprise and workspace, "E123:T456" or "T456".
        team: the sender's workspace (a streaming recipient).
        channel: the channel or DM id.
        ts: this message's ts.
        thread_ts: the thread the answer goes into; "" for a plain DM (answered in the DM).
        user: the sender.
        text: what they wrote, Slack markup turned into plain text, the bot's mention removed.
    """

    kind: MessageKind
    event_id: str
    tenant: str
    team: str
    channel: str
    ts: str
    thread_ts: str
    user: str
    text: str

    @property
    def is_direct(self) -> bool:
        return self.kind == "direct"


@dataclass(frozen=True, slots=True)
class AssistantThread:
    """A new thread in Slack's assistant panel (``assistant_thread_started``)."""

    event_id: str
    tenant: str
    channel: str
    thread_ts: str
    user: str


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """One ``/dari ...`` invocation."""

    tenant: str
    channel: str
    user: str
    text: str
    trigger_id: str
    response_url: str

    @property
    def is_direct(self) -> bool:
        return self.channel.startswith("D")


def _str(data: object, key: str) -> str:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else ""


def _dict(data: object, key: str) -> Mapping[str, Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _authorizations(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = body.get("authorizations")
    if not isinstance(value, list):
        return []
    return [a for a in value if isinstance(a, Mapping)]


def tenant_of(body: Mapping[str, Any]) -> str:
    """The isolation unit of an event or command: "<enterprise>:<team>", "<team>" or "<enterprise>"."""
    first = next(iter(_authorizations(body)), {})
    enterprise = _str(body, "enterprise_id") or _str(first, "enterprise_id")
    team = _str(body, "team_id") or _str(body, "context_team_id") or _str(first, "team_id")
    return ":".join(part for part in (enterprise, team) if part)


def bot_user_ids(body: Mapping[str, Any], bot_user_id: str | None) -> frozenset[str]:
    """Every user id that is this bot: from auth.test, the envelope's authorizations and authed_users."""
    ids = {bot_user_id} if bot_user_id else set()
    ids.update(_str(a, "user_id") for a in _authorizations(body) if a.get("is_bot") is True)
    authed = body.get("authed_users")
    if isinstance(authed, list):
        ids.update(u for u in authed if isinstance(u, str))
    ids.discard("")
    return frozenset(ids)


def mentions(text: str) -> set[str]:
    """The user ids mentioned in Slack markup (``<@U123>`` or ``<@U123|name>``)."""
    return set(_USER_MENTION.findall(text))


def _unmark(inner: str, bots: frozenset[str]) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        if target[1:] in bots:
            return ""
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        keyword = target[1:].split("^", 1)[0]
        return label or "@" + keyword
    if target.startswith("mailto:"):
        return label or target[len("mailto:") :]
    return f"{label} ({target})" if label and label != target else target


def plain_text(text: str, bots: Iterable[str] = ()) -> str:
    """Slack markup as plain text for the LLM: mentions of the bot removed, links spelled out."""
    bot_ids = frozenset(bots)
    plain = _MARKUP.sub(lambda m: _unmark(m.group(1), bot_ids), text)
    plain = html.unescape(plain) if "&" in plain else plain
    lines = [_SPACES.sub(" ", line).strip() for line in plain.split("\n")]
    return "\n".join(lines).strip()


def _is_person(event: Mapping[str, Any], bots: frozenset[str], bot_id: str | None) -> bool:
    subtype = event.get("subtype")
    if subtype is not None and subtype not in _HUMAN_SUBTYPES:
        return False  # edits, deletions, joins, bot_message, assistant_app_thread, ...
    if event.get("hidden") is True or event.get("bot_id") or event.get("bot_profile"):
        return False  # another app can post with a user id and bot_id but no subtype
    user = _str(event, "user")
    if not user or user in bots or user == "USLACKBOT":
        return False
    return not (bot_id and event.get("bot_id") == bot_id)


def to_slack_message(
    body: Mapping[str, Any], *, bot_user_id: str | None, bot_id: str | None
) -> SlackMessage | None:
    """The message an ``app_mention`` or ``message`` event carries, or None when it is not for us."""
    event = _dict(body, "event")
    kind_of_event = _str(event, "type")
    channel, ts, tenant = _str(event, "channel"), _str(event, "ts"), tenant_of(body)
    if kind_of_event not in ("app_mention", "message") or not (channel and ts and tenant):
        return None
    bots = bot_user_ids(body, bot_user_id)
    if not _is_person(event, bots, bot_id):
        return None
    raw = _str(event, "text")
    thread = _str(event, "thread_ts")
    channel_type = _str(event, "channel_type")
    kind: MessageKind
    if kind_of_event == "app_mention" or (channel_type in _CHANNEL_TYPES and mentions(raw) & bots):
        kind, reply_in = "mention", thread or ts
    elif channel_type == "im":
        kind, reply_in = "direct", thread
    elif channel_type in _CHANNEL_TYPES and thread and not mentions(raw):
        kind, reply_in = "follow_up", thread  # a reply addressed to someone else is left alone
    else:
        return None
    text = plain_text(raw, bots)
    if kind == "follow_up" and not text:
        return None
    return SlackMessage(
        kind=kind,
        event_id=_str(body, "event_id"),
        tenant=tenant,
        team=_str(event, "user_team") or _str(event, "team") or _str(body, "team_id"),
        channel=channel,
        ts=ts,
        thread_ts=reply_in,
        user=_str(event, "user"),
        text=text,
    )


def to_assistant_thread(body: Mapping[str, Any]) -> AssistantThread | None:
    """The thread an ``assistant_thread_started`` event opens, or None when it is incomplete."""
    event = _dict(body, "event")
    thread = _dict(event, "assistant_thread")
    channel, thread_ts, tenant = _str(thread, "channel_id"), _str(thread, "thread_ts"), tenant_of(body)
    if _str(event, "type") != "assistant_thread_started" or not (channel and thread_ts and tenant):
        return None
    return AssistantThread(
        event_id=_str(body, "event_id"),
        tenant=tenant,
        channel=channel,
        thread_ts=thread_ts,
        user=_str(thread, "user_id"),
    )


def to_inbound(message: SlackMessage, *, bot: str, user_name: str = "") -> Inbound:
    """The engine's view of a Slack message. A channel thread is one conversation shared by its people."""
    key = ConversationKey(
        platform=PLATFORM,
        tenant=message.tenant,
        conversation=message.channel,
        thread=message.thread_ts,
        bot=bot,
    )
    return Inbound(
        key=key,
        message_id=f"{message.channel}:{message.ts}",
        user_id=message.user,
        text=message.text,
        user_name=user_name,
        is_direct=message.is_direct,
    )


def to_command(form: Mapping[str, Any]) -> SlashCommand | None:
    """A slash command from its form body, or None when it lacks a channel, user or workspace."""
    channel, user, tenant = _str(form, "channel_id"), _str(form, "user_id"), tenant_of(form)
    if not (channel and user and tenant):
        return None
    return SlashCommand(
        tenant=tenant,
        channel=channel,
        user=user,
        text=_str(form, "text").strip(),
        trigger_id=_str(form, "trigger_id"),
        response_url=_str(form, "response_url"),
    )


_COMMAND_WORDS = {
    "": "도움말",
    "help": "도움말",
    "도움말": "도움말",
    "reset": "초기화",
    "초기화": "초기화",
    "forget": "잊어줘",
    "잊어줘": "잊어줘",
}


def command_word(text: str) -> str:
    """The engine command a ``/dari`` argument asks for, in Korean so the answer is Korean."""
    return _COMMAND_WORDS.get(text.strip().lower(), "도움말")


def thread_title(text: str, *, limit: int = 40) -> str:
    """A short title for an assistant thread: the first line of the first question."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"
