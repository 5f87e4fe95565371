"""LLM Markdown -> Slack mrkdwn, for messages posted as ``text``. Pure.

Streamed messages need none of this: chat.startStream takes Markdown as it is.
Slack only renders ``*bold*`` at word boundaries, and Korean particles stick to the
word before them ("**중요**합니다"), so a zero-width space is put between a marker and
a letter it would otherwise touch.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["to_mrkdwn"]

ZWSP = "\u200b"

# Sentinels that no model writes: (opening, closing) markers stay protected until the last step.
_B, _I, _S = ("\x01", "\x02"), ("\x03", "\x05"), ("\x06", "\x07")
_LINK = "\x04"
_MARKERS = {_B[0]: "*", _B[1]: "*", _I[0]: "_", _I[1]: "_", _S[0]: "~", _S[1]: "~"}
_OPEN_TOUCH = re.compile(r"(?<=\w)([\x01\x03\x06])")
_CLOSE_TOUCH = re.compile(r"([\x02\x05\x07])(?=\w)")

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?:\[([ xX])\]\s+)?(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d{1,9})[.)]\s+(.*)$")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^<>\s]+)>")
_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_ITALIC = re.compile(r"(?<!\*)\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?!\*)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_UNDERSCORE_ITALIC = re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unescaped_label(label: str) -> str:
    return re.sub(r"\*\*|__|`", "", label).replace("|", "¦").strip()


def _wrap(marks: tuple[str, str], text: str) -> str:
    return f"{marks[0]}{text}{marks[1]}"


def _emphasis(text: str) -> str:
    text = _BOLD_ITALIC.sub(lambda m: _wrap(_B, _wrap(_I, m.group(1))), text)
    text = _BOLD.sub(lambda m: _wrap(_B, m.group(1) or m.group(2)), text)
    text = _ITALIC.sub(lambda m: _wrap(_I, m.group(1)), text)
    text = _UNDERSCORE_ITALIC.sub(lambda m: _wrap(_I, m.group(1)), text)
    return _STRIKE.sub(lambda m: _wrap(_S, m.group(1)), text)


def _inline(text: str) -> str:
    """One line's inline Markdown; code spans are kept verbatim (escaped only)."""
    links: list[str] = []

    def keep(rendered: str) -> str:
        links.append(rendered)
        return f"{_LINK}{len(links) - 1}{_LINK}"

    parts: list[str] = []
    last = 0
    for span in _CODE_SPAN.finditer(text):
        parts.append(_prose(text[last : span.start()], keep))
        parts.append(keep("`" + _escape(span.group(2).strip()) + "`"))
        last = span.end()
    parts.append(_prose(text[last:], keep))
    out = "".join(parts)
    out = _OPEN_TOUCH.sub(lambda m: ZWSP + m.group(1), out)
    out = _CLOSE_TOUCH.sub(lambda m: m.group(1) + ZWSP, out)
    for sentinel, marker in _MARKERS.items():
        out = out.replace(sentinel, marker)
    return re.sub(f"{_LINK}(\\d+){_LINK}", lambda m: links[int(m.group(1))], out)


def _prose(text: str, keep: Callable[[str], str]) -> str:
    def link(match: re.Match[str]) -> str:
        label, url = _unescaped_label(match.group(1)), _escape(match.group(2))
        return keep(f"<{url}|{_escape(label)}>" if label and label != match.group(2) else f"<{url}>")

    text = _IMAGE_OR_LINK.sub(link, text)
    text = _AUTOLINK.sub(lambda m: keep(f"<{_escape(m.group(1))}>"), text)
    return _emphasis(_escape(text))


def _line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    if heading := _HEADING.match(line):
        title = re.sub(r"\*\*|__", "", heading.group(1))
        return _inline(f"**{title}**") if title else ""
    if quote := _QUOTE.match(line):
        return "> " + _line(quote.group(1)) if quote.group(1) else ">"
    if bullet := _BULLET.match(line):
        indent, box, rest = bullet.groups()
        mark = "•" if box is None else ("☐" if box == " " else "☑")
        return f"{indent}{mark} {_inline(rest)}"
    if numbered := _NUMBERED.match(line):
        indent, number, rest = numbered.groups()
        return f"{indent}{number}. {_inline(rest)}"
    return _inline(line)


def _is_table(lines: list[str], at: int) -> bool:
    return (
        at + 1 < len(lines) and bool(_TABLE_ROW.match(lines[at])) and bool(_TABLE_RULE.match(lines[at + 1]))
    )


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for Markdown: bold, italics, strike, links, lists, headings, quotes, code, tables.

    Tables have no mrkdwn form; they become a code block so the columns stay aligned.
    """
    lines = markdown.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    fence = ""
    at = 0
    while at < len(lines):
        line = lines[at]
        opener = _FENCE.match(line)
        if fence:
            closer = opener.group(1) if opener else ""
            if closer[:1] == fence[0] and len(closer) >= len(fence) and not line.strip().strip(fence[0]):
                out.append("```")
                fence = ""
            else:
                out.append(_escape(line))
        elif opener:
            fence = opener.group(1)
            out.append("```")
        elif _is_table(lines, at):
            out.append("```")
            while at < len(lines) and _TABLE_ROW.match(lines[at]):
                if not _TABLE_RULE.match(lines[at]):
                    out.append(_escape(lines[at].strip()))
                at += 1
            out.append("```")
            continue
        else:
            out.append(_line(line))
        at += 1
    if fence:
        out.append("```")
    return "\n".join(out)
