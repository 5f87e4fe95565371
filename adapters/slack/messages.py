"""Sentences only the Slack door says, per language and speech level.

They belong with the others in core/messages.py; they live here until they move.
"""

from __future__ import annotations

from typing import Literal

from core.messages import Lang
from core.persona import SpeechLevel

__all__ = ["SlackText", "slack_say"]

SlackText = Literal["status_working", "prompts_title", "reset_in_channel"]

_HAEYO: dict[SlackText, str] = {
    "status_working": "답변을 준비하고 있어요…",
    "prompts_title": "이렇게 물어보세요",
    "reset_in_channel": (
        "채널에서는 스레드마다 대화를 따로 기억해요. "
        "초기화하려는 스레드에서 저를 멘션하고 '초기화'라고 보내 주세요."
    ),
}

_HAPSYO: dict[SlackText, str] = {
    "status_working": "답변을 준비하고 있습니다…",
    "prompts_title": "이렇게 물어보십시오",
    "reset_in_channel": (
        "채널에서는 스레드마다 대화를 따로 기억합니다. "
        "초기화하려는 스레드에서 저를 멘션하고 '초기화'라고 보내 주십시오."
    ),
}

_EN: dict[SlackText, str] = {
    "status_working": "Preparing an answer…",
    "prompts_title": "Try asking",
    "reset_in_channel": (
        "In channels every thread is its own conversation. "
        "To start one over, mention me in that thread and say 'reset'."
    ),
}


def slack_say(text: SlackText, *, lang: Lang, level: SpeechLevel = "haeyo") -> str:
    """One Slack-only sentence in the user's language and the bot's speech level."""
    if lang == "en":
        return _EN[text]
    return (_HAPSYO if level == "hapsyo" else _HAEYO)[text]
