"""Chat commands users type in Korean or English (초기화 / /reset, 기억해 줘: … / /remember …).

Whole-message commands (초기화, 도움말, 잊어줘, 기억 목록) match the message alone, with the
politeness and punctuation people add. Commands with an argument match its start:

    기억해 줘: 저는 재무팀이에요     /remember I work in finance      REMEMBER "저는 재무팀이에요"
    기억 목록                       /memory                          MEMORY
    기억 삭제 2 / 2번 기억 지워 줘    /memory delete 2                 MEMORY_DELETE "2"

Korean "기억해 줘" needs the colon: "기억해 주세요 제가 뭐라고 했는지" is a question, not a fact.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["Command", "CommandCall", "parse_command"]


class Command(enum.Enum):
    RESET = "reset"
    HELP = "help"
    FORGET = "forget"
    REMEMBER = "remember"
    MEMORY = "memory"
    MEMORY_DELETE = "memory_delete"


@dataclass(frozen=True, slots=True)
class CommandCall:
    """A command and its argument as typed ("" when it has none)."""

    command: Command
    argument: str = ""


_WORDS: dict[str, Command] = {
    "초기화": Command.RESET,
    "리셋": Command.RESET,
    "/reset": Command.RESET,
    "/초기화": Command.RESET,
    "초기화해줘": Command.RESET,
    "초기화해주세요": Command.RESET,
    "도움말": Command.HELP,
    "/help": Command.HELP,
    "/도움말": Command.HELP,
    "잊어줘": Command.FORGET,
    "/forget": Command.FORGET,
    "/잊어줘": Command.FORGET,
    "잊어주세요": Command.FORGET,
    "다잊어줘": Command.FORGET,
    "기억목록": Command.MEMORY,
    "기억목록보여줘": Command.MEMORY,
    "기억목록보여주세요": Command.MEMORY,
    "/memory": Command.MEMORY,
    "/memories": Command.MEMORY,
    "/기억": Command.MEMORY,
    "/기억목록": Command.MEMORY,
    "/remember": Command.REMEMBER,
    "/기억해": Command.REMEMBER,
}

# Trailing politeness and punctuation users add: "초기화해 줘", "잊어 줘!", "도움말?"
_TRAILING = re.compile(r"[\s.!?~。！？]+$")

_DELETE = (
    re.compile(r"^기억\s*(?:삭제|지우기|지워\s*(?:줘|주세요)?)\s*(?P<n>\S*?)\s*번?$"),
    re.compile(r"^(?P<n>\d+)\s*번\s*기억\s*(?:삭제|지워\s*(?:줘|주세요)?)(?:\s*해\s*(?:줘|주세요))?$"),
    re.compile(r"^/(?:memory|memories)\s+(?:delete|del|remove|rm|forget)\s*(?P<n>\S*)$", re.IGNORECASE),
    re.compile(r"^/기억\s*(?:삭제|지우기)\s*(?P<n>\S*?)\s*번?$"),
)
_KEEP = r"(?:하기|해\s*(?:줘|주세요|주십시오|둬|두세요|놔\s*줘|놔)?)"  # 기억해 줘, 기억해 두세요, ...
_REMEMBER = (
    re.compile(r"^/(?:remember|기억해?)\s+(?P<arg>.+)$", re.IGNORECASE | re.DOTALL),
    re.compile(rf"^기억\s*{_KEEP}\s*[:：]\s*(?P<arg>.*)$", re.DOTALL),
    re.compile(r"^remember(?:\s+this)?\s*[:：]\s*(?P<arg>.*)$", re.IGNORECASE | re.DOTALL),
)


def parse_command(text: str) -> CommandCall | None:
    """The command a message asks for, or None for an ordinary message."""
    stripped = text.strip()
    word = re.sub(r"\s+", "", _TRAILING.sub("", stripped).lower())
    if word in _WORDS:
        return CommandCall(_WORDS[word])
    for pattern in _DELETE:
        if found := pattern.match(_TRAILING.sub("", stripped)):
            return CommandCall(Command.MEMORY_DELETE, found["n"])
    for pattern in _REMEMBER:
        if found := pattern.match(stripped):
            return CommandCall(Command.REMEMBER, found["arg"].strip())
    return None
