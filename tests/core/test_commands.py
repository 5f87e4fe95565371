from __future__ import annotations

import pytest

from core.commands import Command, CommandCall, parse_command
from core.messages import Lang, say
from core.persona import SpeechLevel


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("초기화", CommandCall(Command.RESET)),
        ("초기화해 줘", CommandCall(Command.RESET)),
        ("/reset", CommandCall(Command.RESET)),
        ("도움말?", CommandCall(Command.HELP)),
        ("잊어 줘!", CommandCall(Command.FORGET)),
        ("/forget", CommandCall(Command.FORGET)),
        ("기억해 줘: 저는 재무팀이에요", CommandCall(Command.REMEMBER, "저는 재무팀이에요")),
        ("기억해줘:저는 재무팀이에요", CommandCall(Command.REMEMBER, "저는 재무팀이에요")),
        ("기억해 주세요： 점심은 12시 반", CommandCall(Command.REMEMBER, "점심은 12시 반")),
        ("기억해 둬: 보고서는 PDF로", CommandCall(Command.REMEMBER, "보고서는 PDF로")),
        ("기억해 줘:", CommandCall(Command.REMEMBER, "")),
        ("/remember I work in finance", CommandCall(Command.REMEMBER, "I work in finance")),
        ("/REMEMBER  tea, no sugar ", CommandCall(Command.REMEMBER, "tea, no sugar")),
        ("/remember", CommandCall(Command.REMEMBER, "")),
        ("/기억 저는 재무팀", CommandCall(Command.REMEMBER, "저는 재무팀")),
        ("remember: I prefer mornings", CommandCall(Command.REMEMBER, "I prefer mornings")),
        ("기억 목록", CommandCall(Command.MEMORY)),
        ("기억목록 보여 주세요", CommandCall(Command.MEMORY)),
        ("/memory", CommandCall(Command.MEMORY)),
        ("/기억", CommandCall(Command.MEMORY)),
        ("기억 삭제 2", CommandCall(Command.MEMORY_DELETE, "2")),
        ("기억 삭제 2번", CommandCall(Command.MEMORY_DELETE, "2")),
        ("2번 기억 지워 줘", CommandCall(Command.MEMORY_DELETE, "2")),
        ("3번 기억 삭제해 주세요.", CommandCall(Command.MEMORY_DELETE, "3")),
        ("/memory delete 3", CommandCall(Command.MEMORY_DELETE, "3")),
        ("/기억 삭제 1", CommandCall(Command.MEMORY_DELETE, "1")),
        ("기억 삭제", CommandCall(Command.MEMORY_DELETE, "")),
    ],
)
def test_commands_in_korean_and_english(text: str, expected: CommandCall) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "기억해 주세요 제가 어제 뭐라고 했는지",  # a question, not a fact: no colon
        "기억 삭제 방법 알려 줘",
        "Remember when we met?",
        "초기화 버튼이 어디 있죠?",
        "회의록을 기억해 줘: 라고 쓰면 되나요?",
        "",
    ],
)
def test_ordinary_messages_are_not_commands(text: str) -> None:
    assert parse_command(text) is None


@pytest.mark.parametrize(
    ("lang", "level"), [("ko", "haeyo"), ("ko", "hapsyo"), ("en", "haeyo")], ids=["haeyo", "hapsyo", "en"]
)
def test_help_documents_the_memory_commands(lang: Lang, level: SpeechLevel) -> None:
    text = say("help", lang=lang, level=level, name="다리")
    for form in (
        "기억해 줘:",
        "/remember",
        "기억 목록",
        "/memory",
        "기억 삭제",
        "/memory delete",
        "잊어줘",
        "/forget",
    ):
        assert form in text
