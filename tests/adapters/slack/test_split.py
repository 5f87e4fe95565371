"""adapters.slack.split: long answers as several messages, cut where a reader would."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.split import cut_point, split_once, split_text


@pytest.mark.parametrize(
    ("text", "limit", "parts"),
    [
        ("짧은 답", 20, ["짧은 답"]),
        ("첫 문단이에요.\n\n둘째 문단이에요.", 12, ["첫 문단이에요.", "둘째 문단이에요."]),
        ("첫째 줄이에요\n둘째 줄이에요", 10, ["첫째 줄이에요", "둘째 줄이에요"]),
        ("첫 문장이에요. 둘째 문장이에요.", 12, ["첫 문장이에요.", "둘째 문장이에요."]),
        ("가나다 라마바 사아자", 8, ["가나다 라마바", "사아자"]),
        ("가" * 25, 10, ["가" * 10, "가" * 10, "가" * 5]),
    ],
)
def test_split_text(text: str, limit: int, parts: list[str]) -> None:
    assert split_text(text, limit) == parts


def test_paragraph_break_wins_over_a_later_line_break() -> None:
    text = "가" * 10 + "\n\n" + "나" * 4 + "\n" + "다" * 10
    assert cut_point(text, 20) == 12


def test_a_syllable_spelled_in_jamo_is_never_cut() -> None:
    text = unicodedata.normalize("NFD", "한글한글한글")  # 3 jamo per syllable
    parts = split_text(text, 7)
    assert [unicodedata.normalize("NFC", p) for p in parts] == ["한글", "한글", "한글"]


def test_combining_marks_and_emoji_modifiers_stay_with_their_letter() -> None:
    assert cut_point("e\u0301" * 10, 5) % 2 == 0
    assert cut_point("👍🏽" * 10, 5) % 2 == 0


def test_cut_a_code_block_is_closed_and_reopened() -> None:
    text = "```\n" + "x = 1\n" * 10 + "```\n끝"
    parts = split_text(text, 30)
    assert all(len(p) <= 30 for p in parts)
    assert all(p.startswith("```") and p.count("```") == 2 for p in parts[:-1])
    assert parts[-1].endswith("```\n끝")


def test_shown_text_is_never_taken_back() -> None:
    text = "가나다\n\n라마바사아자차카타파하"
    head, tail = split_once(text, 10, start=6)
    assert head.startswith("가나다\n\n") and len(head) <= 10 and head + tail == text


# Tokens: syllables, a syllable spelled as conjoining jamo (ᄀ+ᅡ+ᆨ), spaces, breaks, fences.
TOKENS = ["가", "나", "다", "라", "마", " ", ".", "!", "\n", "\n\n", "\u1100\u1161\u11a8", "```\n"]


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.sampled_from(TOKENS), max_size=200).map("".join),
    limit=st.integers(min_value=12, max_value=80),
)
def test_parts_fit_and_keep_every_letter(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    letters = "".join(text.replace("```", "").split())
    assert "".join("".join(parts).replace("```", "").split()) == letters
    for part in parts[1:]:
        assert not part or not ("\u1160" <= part[0] <= "\u11ff")  # no part starts mid-syllable


@pytest.mark.parametrize("text", ["```\n" * 10, "```\n\n" * 10 + "가" * 30, "```\n가\n" * 12])
def test_fences_alone_still_make_progress(text: str) -> None:
    parts = split_text(text, 12)
    assert all(len(p) <= 12 for p in parts)
