"""Persona: who a bot is and how it speaks, loaded from ``bots/<id>.toml`` at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Persona", "SpeechLevel"]

SpeechLevel = Literal["haeyo", "hapsyo"]


@dataclass(frozen=True, slots=True)
class Persona:
    """A validated bot definition.

    Attributes:
        id: the file stem (``bots/default.toml`` -> "default").
        name: the assistant's name as users see it.
        speech_level: "haeyo" (해요체, the default) or "hapsyo" (하십시오체).
        language: "ko" or "en": the language of notices when the user's own is unclear.
        greeting: the first message in a new chat.
        quick_replies: suggested follow-ups (Kakao quick replies, Slack suggested prompts).
        instructions: the persona's own system prompt text.
        model: the model name; "" means the service default (``DARI_MODEL``).
        temperature: sampling temperature.
        max_answer_tokens: a cap on one answer.
        history_tokens: the token budget for past turns in a prompt.
        history_turns: at most this many past turns are loaded.
        retention_days: conversation data expires this many days after the last message.
    """

    id: str
    name: str
    speech_level: SpeechLevel
    language: Literal["ko", "en"]
    greeting: str
    quick_replies: tuple[str, ...]
    instructions: str
    model: str
    temperature: float
    max_answer_tokens: int
    history_tokens: int
    history_turns: int
    retention_days: int

    @property
    def retention_seconds(self) -> float:
        return self.retention_days * 86400.0
