"""Outgoing activity shapes and splitting answers over Teams' size limit."""

from __future__ import annotations

import pytest

from adapters.teams.activities import (
    MESSAGE_LIMIT,
    answer,
    split_text,
    stream_final,
    stream_start,
    stream_update,
    utf16_size,
)


def test_an_answer_is_markdown_with_feedback_buttons_and_the_ai_label() -> None:
    activity = answer("**굵게**")

    assert activity["textFormat"] == "markdown"
    assert activity["channelData"] == {"feedbackLoopEnabled": True}
    assert activity["entities"][0]["additionalType"] == ["AIGeneratedContent"]
    assert "channelData" not in answer("환영해요", feedback=False)


def test_the_stream_sequence_shapes() -> None:
    start = stream_start("답변을 준비하고 있어요…")
    update = stream_update("부분", stream_id="s1", sequence=2)
    final = stream_final("전체", stream_id="s1")

    assert start["type"] == update["type"] == "typing"
    assert start["entities"] == [{"type": "streaminfo", "streamType": "informative", "streamSequence": 1}]
    assert update["entities"] == [
        {"type": "streaminfo", "streamType": "streaming", "streamId": "s1", "streamSequence": 2}
    ]
    assert final["type"] == "message"
    assert final["entities"][0] == {"type": "streaminfo", "streamType": "final", "streamId": "s1"}
    assert "streamSequence" not in final["entities"][0]
    assert final["channelData"] == {"feedbackLoopEnabled": True}, "feedback only on the final message"


def test_a_short_answer_is_one_message() -> None:
    assert split_text("짧은 답변이에요.") == ["짧은 답변이에요."]
    assert split_text("") == [""]


def test_hangul_is_measured_in_utf16() -> None:
    text = "가" * 50_000  # 100,000 bytes in UTF-16 (150,000 in UTF-8)

    parts = split_text(text)

    assert utf16_size(text) == 100_000
    assert len(parts) == 2
    assert MESSAGE_LIMIT - 16 <= utf16_size(parts[0]) <= MESSAGE_LIMIT
    assert "".join(parts) == text


def test_cuts_prefer_paragraph_ends_and_lose_nothing() -> None:
    paragraphs = [f"{n}번째 문단이에요. " * 40 for n in range(12)]
    text = "\n\n".join(paragraphs)

    parts = split_text(text, limit=4_000)

    assert all(utf16_size(p) <= 4_000 for p in parts)
    assert len(parts) > 1
    assert all(p.rstrip().endswith("이에요.") for p in parts), "every cut falls after a sentence"
    assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_an_open_code_fence_is_closed_and_reopened() -> None:
    text = "코드예요:\n```python\n" + "print('안녕')\n" * 400 + "```\n끝."

    parts = split_text(text, limit=2_000)

    assert len(parts) > 2
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert all(p.startswith("```python\n") for p in parts[1:])
    assert all(utf16_size(p) <= 2_000 for p in parts)


def test_a_tiny_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        split_text("text", limit=10)
