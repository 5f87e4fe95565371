"""Chat commands users type in Korean or English (초기화 / /reset, ...)."""

from __future__ import annotations

import enum
import re

__all__ = ["Command", "parse_command"]


class Command(enum.Enum):
    RESET = "reset"
    HELP = "help"
    FORGET = "forget"


_WORDS: dict[str, Command] = {
    "초기화": Command.RESET,
    "리셋": Command.RESET,
    "/reset": Command.RESET,
    "/초기화": Command.RESET,
    "도움말": Command.HELP,
    "/help": Command.HELP,
    "/도움말": Command.HELP,
    "잊어줘": Command.FORGET,
    "/forget": Command.FORGET,
    "/잊어줘": Command.FORGET,
}

# Trailing politeness and punctuation users add: "초기화해 줘", "잊어 줘!", "도움말?"
_TRAILING = re.compile(r"[\s.!?~。！？]+$")


def parse_command(text: str) -> Command | None:
    """The command a whole message asks for, or None for an ordinary message."""
    word = _TRAILING.sub("", text.strip()).lower()
    word = re.sub(r"\s+", "", word)
    if word in _WORDS:
        return _WORDS[word]
    if word in ("초기화해줘", "초기화해주세요"):
        return Command.RESET
    if word in ("잊어주세요", "다잊어줘"):
        return Command.FORGET
    return None
