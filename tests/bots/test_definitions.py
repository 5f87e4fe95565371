"""Every bot shipped in bots/ loads and keeps the rules that a schema alone cannot check."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.persona import QUICK_REPLIES_MAX, QUICK_REPLY_MAX_CHARS, Persona, load_personas

BOTS = Path(__file__).resolve().parents[2] / "bots"
PERSONAS = load_personas(BOTS)


def test_every_toml_file_is_a_bot() -> None:
    assert sorted(PERSONAS) == sorted(path.stem for path in BOTS.glob("*.toml"))
    assert {"default", "formal"} <= set(PERSONAS)


@pytest.mark.parametrize("persona", PERSONAS.values(), ids=list(PERSONAS))
def test_quick_replies_fit_kakao(persona: Persona) -> None:
    assert 3 <= len(persona.quick_replies) <= min(5, QUICK_REPLIES_MAX)
    assert all(0 < len(label) <= QUICK_REPLY_MAX_CHARS for label in persona.quick_replies)
    assert len(set(persona.quick_replies)) == len(persona.quick_replies)


@pytest.mark.parametrize("persona", PERSONAS.values(), ids=list(PERSONAS))
def test_instructions_cover_the_house_rules(persona: Persona) -> None:
    text = persona.instructions
    for rule in (
        "사내 업무 도우미",
        "반말",
        "커피 나오셨습니다",
        "님",
        "만 나이",
        "KST",
        "[전화번호]",
        "추측",
    ):
        assert rule in text, rule
    assert "영어" in text  # answer in English when the user writes English


@pytest.mark.parametrize("persona", PERSONAS.values(), ids=list(PERSONAS))
def test_greeting_is_short_and_in_the_bot_level(persona: Persona) -> None:
    assert len(persona.greeting) <= 100  # one chat bubble, well under Kakao's 1000-character cap
    assert persona.name in persona.greeting
    if persona.speech_level == "hapsyo":
        assert persona.greeting.endswith("십시오.")
        assert "요." not in persona.greeting
    else:
        assert persona.greeting.endswith("요.")


def test_default_is_haeyo_and_formal_is_hapsyo() -> None:
    assert PERSONAS["default"].speech_level == "haeyo"
    assert PERSONAS["formal"].speech_level == "hapsyo"
    assert "하십시오체" in PERSONAS["formal"].instructions
    assert "해요체" in PERSONAS["default"].instructions
    for persona in PERSONAS.values():
        assert persona.model == ""
        assert 0.0 <= persona.temperature <= 0.5
