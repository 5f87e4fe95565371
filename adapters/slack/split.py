"""Long answers as several Slack messages: cut between paragraphs, never inside a syllable. Pure.

Python strings index code points, so a precomposed Hangul syllable (가-힣) is never cut in
two; what remains to avoid is cutting a syllable spelled as conjoining jamo, a base letter
from its combining marks, an emoji from its modifiers, and words in half.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["FENCE_CLOSE", "cut_point", "split_once", "split_text"]

FENCE_CLOSE = "\n```"
_FENCE_LINE = re.compile(r"^\s{0,3}```", re.MULTILINE)
# Preferred cuts, best first: after a blank line, after a line, after a sentence, after a space.
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"[.!?。…](?=\s)\s*"), re.compile(r"\s+"))


def _joins_previous(char: str) -> bool:
    """True when ``char`` belongs to the character before it (no cut may fall in front of it)."""
    code = ord(char)
    return (
        0x1160 <= code <= 0x11FF  # Hangul jamo vowels and final consonants
        or 0xD7B0 <= code <= 0xD7FF  # Hangul jamo extended-B
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin-tone modifiers
        or code in (0x200D, 0x20E3)  # zero-width joiner, keycap
        or unicodedata.combining(char) != 0
    )


def _joins_next(char: str) -> bool:
    code = ord(char)
    return 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97F or code == 0x200D  # leading jamo, ZWJ


def _safe(text: str, at: int) -> bool:
    return 0 < at < len(text) and not _joins_previous(text[at]) and not _joins_next(text[at - 1])


def cut_point(text: str, limit: int, *, start: int = 0) -> int:
    """Where to end the first message of ``text``, at most ``limit`` characters in.

    Never before ``start`` (text already shown). Prefers, in order, a paragraph break, a line
    break, a sentence end and a space, each first searched in the second half of the window.
    """
    if len(text) <= limit:
        return len(text)
    low = max(start, 1)
    for floor in (max(low, limit // 2), low):
        for pattern in _BREAKS:
            ends = [m.end() for m in pattern.finditer(text, floor, limit + 1) if floor < m.end() <= limit]
            if ends:
                return ends[-1]
    at = max(limit, low)
    while at > low and not _safe(text, at):
        at -= 1
    while at < len(text) and not _safe(text, at):
        at += 1
    return at


def _open_fence(text: str) -> bool:
    return len(_FENCE_LINE.findall(text)) % 2 == 1


def split_once(text: str, limit: int, *, start: int = 0) -> tuple[str, str]:
    """The first message (at most ``limit`` characters) and the rest.

    A code block cut in two is closed at the end of the first part and reopened in the second.
    """
    at = cut_point(text, limit, start=start)
    if _open_fence(text[:at]):  # room for the closing fence
        at = cut_point(text, limit - len(FENCE_CLOSE), start=start)
    head, tail = text[:at], text[at:].lstrip("\n")
    if _open_fence(head) and len(tail) + 4 < len(text):
        # only what is not shown yet may be trimmed; reopening must still shorten the rest
        head = head[:start] + head[start:].rstrip("\n")
        return head + FENCE_CLOSE, "```\n" + tail
    return head, tail


def split_text(text: str, limit: int) -> list[str]:
    """``text`` as messages of at most ``limit`` characters each."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        head, rest = split_once(rest, limit)
        parts.append(head.rstrip())
    if rest.strip() or not parts:
        parts.append(rest)
    return parts
