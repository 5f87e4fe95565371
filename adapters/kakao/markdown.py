"""Answer text for KakaoTalk bubbles: Markdown to plain text, and plain text into bubbles.

LLMs answer in Markdown, and a simpleText bubble shows every character as typed, so ``**중요**``
would reach the user with its asterisks. ``markdown_to_plain`` keeps the words and the shape
(lines, bullets, numbers, link targets, code) and drops the markup; Korean text and emoji pass
through untouched. ``split_text`` then cuts the text into bubbles of at most 1,000 characters
at the most natural place it can find.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from itertools import zip_longest

from core.messages import Lang, say
from core.persona import SpeechLevel

__all__ = ["MAX_TEXT_CHARS", "markdown_to_plain", "safe_cut", "split_text", "try_fit"]

MAX_TEXT_CHARS = 1000  # simpleText.text; Kakao counts characters, as Python's len() does

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_SETEXT = re.compile(r"^\s{0,3}=+\s*$")
_QUOTE = re.compile(r"^\s{0,3}>[ \t]?")
_BULLET = re.compile(r"^(\s*)[-*+][ \t]+(?:\[([ xX])\][ \t]+)?(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")

_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
# One level of balanced parentheses, so that wiki-style URLs such as /Foo_(bar) stay whole.
_URL = r"((?:[^()\s]|\([^()\s]*\))+)"
_IMAGE = re.compile(r"!\[([^\]]*)\]\(" + _URL + r'(?:\s+"[^"]*")?\)')
_LINK = re.compile(r"\[([^\]]+)\]\(" + _URL + r'(?:\s+"[^"]*")?\)')
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]]+")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)

# `**` may touch letters on both sides: Korean particles follow emphasis directly (**중요**합니다).
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
# `_` never works inside a word (\w is Unicode here), which keeps snake_case, file_name and
# Korean file names such as 보고서_최종_수정본.docx intact.
_BOLD_UNDER = re.compile(r"(?<![\w\\])__(?=\S)(.+?)(?<=\S)__(?!\w)")
_ITALIC_UNDER = re.compile(r"(?<![\w\\])_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)")
# A single `*` may touch Hangul (*강조*해요) but not ASCII digits or letters before it: 2*3*4 stays.
_ITALIC_STAR = re.compile(r"(?<![*A-Za-z0-9\\])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?!\*)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")

_SLOT = re.compile("\ue000(\\d+)\ue001")


def markdown_to_plain(text: str) -> str:
    """Render Markdown as plain text for a KakaoTalk simpleText bubble.

    Bold, italic and strikethrough markers go; headings become plain lines; ``-``/``*``/``+``
    bullets become "• "; numbered lists stay; ``[text](url)`` becomes "text (url)"; inline code
    and fenced code blocks keep their content without backticks or fences; tables become one
    "• header: value / header: value" line per row; quote markers and horizontal rules go.

    Args:
        text: Markdown, typically an LLM answer.

    Returns:
        The plain text, with at most one blank line in a row and no blank lines at either end.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if fence := _FENCE.match(line):
            i += 1
            while i < len(lines) and not _closes(lines[i], fence.group(1)):
                out.append(lines[i])
                i += 1
            i += 1
            continue
        if _starts_table(lines, i):
            header = _cells(lines[i])
            i += 2
            rows: list[list[str]] = []
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                rows.append(_cells(lines[i]))
                i += 1
            out.extend(_table(header, rows))
            continue
        plain = _block(line)
        if plain is not None:
            out.append(plain)
        i += 1
    return _tidy(out)


def _closes(line: str, fence: str) -> bool:
    mark = line.strip()
    return mark.startswith(fence) and set(mark) == {fence[0]}


def _starts_table(lines: list[str], i: int) -> bool:
    return (
        "|" in lines[i]
        and i + 1 < len(lines)
        and "|" in lines[i + 1]
        and _TABLE_RULE.match(lines[i + 1]) is not None
    )


def _cells(line: str) -> list[str]:
    row = line.strip()
    row = row.removeprefix("|")
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(row)]


def _table(header: list[str], rows: list[list[str]]) -> Iterator[str]:
    names = [_inline(cell, br=" ") for cell in header]
    if not rows and any(names):
        yield " / ".join(name for name in names if name)
    for row in rows:
        values = [_inline(cell, br=" ") for cell in row]
        pairs = [
            f"{name}: {value}" if name else value
            for name, value in zip_longest(names, values, fillvalue="")
            if value
        ]
        if pairs:
            yield "• " + " / ".join(pairs)


def _block(line: str) -> str | None:
    """One line outside code and tables; None drops it."""
    if _RULE.match(line) or _SETEXT.match(line):
        return None
    while _QUOTE.match(line):
        line = _QUOTE.sub("", line, count=1)
    if heading := _HEADING.match(line):
        return _inline(heading.group(1) or "")
    if bullet := _BULLET.match(line):
        indent, box, rest = bullet.groups()
        check = "" if box is None else ("☐ " if box == " " else "☑ ")
        return f"{indent}• {check}{_inline(rest)}"
    return _inline(line)


def _inline(text: str, *, br: str = "\n") -> str:
    """Strip inline markup; code, links and URLs are parked first so that no rule touches them."""
    parked: list[str] = []

    def park(value: str) -> str:
        parked.append(value)
        return f"\ue000{len(parked) - 1}\ue001"

    def link(label: str, url: str) -> str:
        label = _emphasis(label).strip()
        return park(url if not label or label == url else f"{label} ({url})")

    text = _CODE.sub(lambda m: park(_code_content(m.group(2))), text)
    text = _ESCAPE.sub(lambda m: park(m.group(1)), text)
    text = _IMAGE.sub(lambda m: link(m.group(1), m.group(2)), text)
    text = _LINK.sub(lambda m: link(m.group(1), m.group(2)), text)
    text = _AUTOLINK.sub(lambda m: park(m.group(1)), text)
    text = _BARE_URL.sub(lambda m: park(m.group(0)), text)
    text = _BR.sub(br, _emphasis(text))
    return _unpark(text, parked)


def _emphasis(text: str) -> str:
    for rule in (_BOLD, _BOLD_UNDER, _STRIKE, _ITALIC_STAR, _ITALIC_UNDER):
        text = rule.sub(_inner, text)
    return text


def _inner(match: re.Match[str]) -> str:
    return match.group(1)


def _code_content(code: str) -> str:
    # CommonMark: one space on each side is padding (`` `a` `` shows `a`), not content.
    if len(code) > 2 and code.startswith(" ") and code.endswith(" ") and code.strip():
        return code[1:-1]
    return code


def _unpark(text: str, parked: list[str]) -> str:
    def back(match: re.Match[str]) -> str:
        index = int(match.group(1))
        # The input itself may contain these private-use characters; leave what we did not park.
        return _unpark(parked[index], parked[:index]) if index < len(parked) else match.group(0)

    return _SLOT.sub(back, text)


def _tidy(lines: list[str]) -> str:
    out: list[str] = []
    for line in "\n".join(lines).split("\n"):
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


# Where a bubble may end, most natural first. Each pattern marks the cut position with group "at".
_BREAKS = (
    re.compile(r"(?P<at>)\n[ \t]*\n"),  # paragraph
    re.compile(r"(?P<at>)\n"),  # line
    # Sentence end: 다. 요. ? ! 。 … and closing quotes, then whitespace (so 3.14 is not an end).
    re.compile(r"[.!?。！？…][\"'”’」』)\]]*(?P<at>)(?=\s)"),
    re.compile(r"(?P<at>)\s"),  # any whitespace
)
# Tried in turn: first only well-filled bubbles at natural breaks, then fuller ones.
_FILLS = (0.5, 0.8, 1.0)


def split_text(
    text: str,
    *,
    max_chars: int = MAX_TEXT_CHARS,
    max_parts: int = 3,
    lang: Lang = "ko",
    level: SpeechLevel = "haeyo",
) -> list[str]:
    """Cut text into at most ``max_parts`` non-empty parts of at most ``max_chars`` characters.

    Parts end at a paragraph break if one lies in the second half of the allowance, else at a
    line break, a sentence end, or whitespace; only a run with none of these is cut mid-word,
    and never inside a character (a Hangul jamo sequence, an emoji with modifiers or ZWJ, a flag).
    Whitespace at the cuts and at both ends is dropped; nothing else changes.

    Args:
        text: plain text.
        max_chars: the most characters in one part.
        max_parts: the most parts.
        lang: language of the notice added when the text does not fit.
        level: speech level of that notice.

    Returns:
        The parts, or [] for blank text. When the text needs more than ``max_parts`` parts, the
        last part ends with the "truncated" notice and still holds at most ``max_chars``.

    Raises:
        ValueError: if ``max_chars`` or ``max_parts`` is below 1.
    """
    if max_chars < 1 or max_parts < 1:
        raise ValueError("max_chars and max_parts must be at least 1")
    body = text.strip()
    if not body:
        return []
    fitted = try_fit(body, max_chars=max_chars, max_parts=max_parts)
    if fitted is not None:
        return fitted
    notice = say("truncated", lang=lang, level=level)
    parts, rest = _pieces(body, max_chars, _FILLS[0], max_parts - 1)
    room = max_chars - len(notice) - 2
    if room < 1 or not rest:
        return [*parts, notice[: safe_cut(notice, max_chars)]]
    head = rest if len(rest) <= room else rest[: _cut(rest, room, _FILLS[0])].rstrip()
    return [*parts, f"{head}\n\n{notice}"]


def try_fit(text: str, *, max_chars: int, max_parts: int) -> list[str] | None:
    """``split_text`` without truncation: the parts, or None if the text needs more than max_parts."""
    body = text.strip()
    if not body:
        return []
    for fill in _FILLS:
        parts, rest = _pieces(body, max_chars, fill, max_parts)
        if not rest:
            return parts
    return None


def safe_cut(text: str, limit: int) -> int:
    """The largest cut position <= limit that does not split a user-perceived character.

    Falls back to ``limit`` itself when no such position exists (for example 2,000 combining marks),
    and to ``len(text)`` when the text is shorter than the limit.
    """
    if limit >= len(text):
        return len(text)
    cut = limit
    while cut > 0 and _joined(text, cut):
        cut -= 1
    return cut if cut > 0 else limit


def _pieces(body: str, limit: int, fill: float, count: int) -> tuple[list[str], str]:
    """Up to ``count`` parts from the front of body, and what remains after them."""
    parts: list[str] = []
    rest = body
    while rest and len(parts) < count:
        if len(rest) <= limit:
            return [*parts, rest], ""
        cut = _cut(rest, limit, fill)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return parts, rest


def _cut(text: str, limit: int, fill: float) -> int:
    """Where to end a part of text (which starts with a non-space and is longer than limit)."""
    window = text[: limit + 1]  # one more, so that whitespace right after the limit is a break
    latest = 0
    for pattern in _BREAKS:
        found = [at for m in pattern.finditer(window) if 0 < (at := m.start("at")) <= limit]
        if found:
            if max(found) >= fill * limit:
                return max(found)
            latest = max(latest, *found)
    return latest or safe_cut(text, limit)


_JOINERS = (
    (0x0300, 0x036F),  # combining diacritics (also caught by unicodedata below)
    (0x1160, 0x11FF),  # Hangul jungseong and jongseong: the rest of a decomposed syllable
    (0xD7B0, 0xD7FF),  # Hangul jamo extended-B
    (0x200C, 0x200D),  # ZWNJ, ZWJ
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
    (0x1F3FB, 0x1F3FF),  # emoji skin-tone modifiers
    (0xE0020, 0xE007F),  # tag characters (subdivision flags)
    (0xE0100, 0xE01EF),  # variation selectors supplement
)


def _joined(text: str, cut: int) -> bool:
    """True when text[cut - 1] and text[cut] belong to one user-perceived character."""
    before, after = text[cut - 1], text[cut]
    code = ord(after)
    if any(low <= code <= high for low, high in _JOINERS) or unicodedata.category(after) in {
        "Mn",
        "Me",
        "Mc",
    }:
        return True
    if before == "\u200d" or (before == "\r" and after == "\n"):
        return True
    if 0x1100 <= ord(before) <= 0x115F or 0xA960 <= ord(before) <= 0xA97F:  # Hangul choseong
        return True
    if _is_flag_half(after) and _is_flag_half(before):
        run = 0
        while cut - 1 - run >= 0 and _is_flag_half(text[cut - 1 - run]):
            run += 1
        return run % 2 == 1  # an odd run before the cut leaves half a flag on each side
    return False


def _is_flag_half(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF
