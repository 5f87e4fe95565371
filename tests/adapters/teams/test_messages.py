"""The Teams door's own sentences in each speech level and in English."""

from __future__ import annotations

from dataclasses import replace

from adapters.settings import DEFAULT_BOTS_DIR
from adapters.teams.messages import say, welcome
from core.persona import load_personas

PERSONAS = load_personas(DEFAULT_BOTS_DIR)


def test_the_welcome_follows_the_bots_speech_level() -> None:
    formal = replace(PERSONAS["default"], speech_level="hapsyo")

    text = welcome(formal, group=True)

    assert text.startswith(formal.greeting.strip())
    assert text.endswith("같은 스레드에서는 앞서 나눈 대화를 기억하고 이어서 답변합니다.")
    assert "(@다리)" in text


def test_an_english_bot_welcomes_in_english() -> None:
    english = replace(PERSONAS["default"], language="en", name="Dari", greeting="Hi, I'm Dari.")

    assert welcome(english, group=False) == (
        "Hi, I'm Dari.\n\nSend /help to see what I can do and which commands I understand."
    )


def test_progress_line_per_language() -> None:
    assert say("preparing", lang="ko") == "답변을 준비하고 있어요…"
    assert say("preparing", lang="ko", level="hapsyo") == "답변을 준비하고 있습니다…"
    assert say("preparing", lang="en") == "Preparing your answer…"
