"""What the Teams door says on its own, in 해요체, 하십시오체 and English.

The engine's sentences (help, reset, apologies) live in ``core.messages``; these are the few
that only exist in Teams: the progress line of a streamed answer and the install welcome.
"""

from __future__ import annotations

from typing import Literal

from core.messages import Lang
from core.persona import Persona, SpeechLevel

__all__ = ["TeamsMessage", "say", "welcome"]

TeamsMessage = Literal["preparing", "welcome_personal", "welcome_group"]

_HAEYO: dict[TeamsMessage, str] = {
    "preparing": "답변을 준비하고 있어요…",
    "welcome_personal": "'도움말'이라고 보내 주시면 할 수 있는 일과 명령어를 알려 드려요.",
    "welcome_group": (
        "채널과 그룹 채팅에서는 저를 멘션(@{name})한 메시지에만 답변해요. "
        "같은 스레드에서는 앞서 나눈 대화를 기억하고 이어서 답변해요."
    ),
}

_HAPSYO: dict[TeamsMessage, str] = {
    "preparing": "답변을 준비하고 있습니다…",
    "welcome_personal": "'도움말'이라고 보내 주시면 할 수 있는 일과 명령어를 안내해 드립니다.",
    "welcome_group": (
        "채널과 그룹 채팅에서는 저를 멘션(@{name})한 메시지에만 답변합니다. "
        "같은 스레드에서는 앞서 나눈 대화를 기억하고 이어서 답변합니다."
    ),
}

_EN: dict[TeamsMessage, str] = {
    "preparing": "Preparing your answer…",
    "welcome_personal": "Send /help to see what I can do and which commands I understand.",
    "welcome_group": (
        "In channels and group chats I only answer messages that mention me (@{name}). "
        "Within a thread, I remember what was said and pick up from there."
    ),
}


def say(message: TeamsMessage, *, lang: Lang, level: SpeechLevel = "haeyo", name: str = "") -> str:
    """One Teams-only sentence in the user's language and the bot's speech level."""
    table = _EN if lang == "en" else _HAPSYO if level == "hapsyo" else _HAEYO
    return table[message].format(name=name)


def welcome(persona: Persona, *, group: bool) -> str:
    """The install welcome: the bot's own greeting, then how to reach it in this kind of chat."""
    hint = say(
        "welcome_group" if group else "welcome_personal",
        lang=persona.language,
        level=persona.speech_level,
        name=persona.name,
    )
    return f"{persona.greeting.strip()}\n\n{hint}"
