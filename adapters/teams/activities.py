"""Outgoing Teams activities as plain JSON: answers, typing, the streaming sequence, splitting.

Streaming (1:1 chats only) is a series of ``typing`` activities carrying a ``streaminfo``
entity: an ``informative`` start (sequence 1, text required), ``streaming`` updates with the
full text so far and the ``streamId`` the start returned, then a ``message`` with
``streamType: "final"`` and no sequence. Only that final message may carry the feedback loop
and the AI-generated label.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "MESSAGE_LIMIT",
    "answer",
    "split_text",
    "stream_final",
    "stream_start",
    "stream_update",
    "typing",
    "utf16_size",
]

# Teams refuses messages over about 100 KB counted in UTF-16 (413 MessageSizeTooBig) and
# asks bots to stay within 80 KB; the rest is headroom for the envelope and entities.
MESSAGE_LIMIT = 80_000

JSON = dict[str, Any]

_CLOSE = "\n```"

# Marks the message as AI-generated: Teams shows the "AI generated" label next to it.
_AI_LABEL: JSON = {
    "type": "https://schema.org/Message",
    "@type": "Message",
    "@context": "https://schema.org",
    "@id": "",
    "additionalType": ["AIGeneratedContent"],
}


def utf16_size(text: str) -> int:
    """Bytes of ``text`` in UTF-16, the unit of Teams' message size limit."""
    return len(text.encode("utf-16-le"))


def answer(text: str, *, feedback: bool = True) -> JSON:
    """A Markdown message; with ``feedback``, Teams shows 👍/👎 under it and the AI label."""
    activity: JSON = {"type": "message", "text": text, "textFormat": "markdown"}
    if feedback:
        activity["entities"] = [dict(_AI_LABEL)]
        activity["channelData"] = {"feedbackLoopEnabled": True}
    return activity


def typing() -> JSON:
    return {"type": "typing"}


def _stream_info(kind: Literal["informative", "streaming", "final"], **extra: object) -> JSON:
    return {"type": "streaminfo", "streamType": kind, **extra}


def stream_start(text: str) -> JSON:
    """The informative update that opens a stream (Teams answers 201 with the stream id)."""
    return {"type": "typing", "text": text, "entities": [_stream_info("informative", streamSequence=1)]}


def stream_update(text: str, *, stream_id: str, sequence: int) -> JSON:
    """A streaming update: ``text`` is the whole answer so far, not a delta."""
    info = _stream_info("streaming", streamId=stream_id, streamSequence=sequence)
    return {"type": "typing", "text": text, "entities": [info]}


def stream_final(text: str, *, stream_id: str) -> JSON:
    """The message that closes a stream and stays in the chat."""
    activity = answer(text)
    activity["entities"] = [_stream_info("final", streamId=stream_id), *activity["entities"]]
    return activity


def _cut(text: str, limit: int) -> int:
    """The longest prefix length of ``text`` within ``limit`` UTF-16 bytes, at a natural break."""
    size, end = 0, 0
    for index, char in enumerate(text):
        size += 4 if ord(char) > 0xFFFF else 2
        if size > limit:
            break
        end = index + 1
    else:
        return len(text)
    window = text[:end]
    for separator in ("\n\n", "\n", ". ", " "):
        at = window.rfind(separator)
        if at > end // 2:
            return at + len(separator)
    return end


def split_text(text: str, *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split an answer into messages of at most ``limit`` UTF-16 bytes each.

    Cuts prefer paragraph, line and sentence ends in the second half of a chunk; a Markdown
    code fence left open by a cut is closed in its chunk and reopened in the next.
    """
    if limit < 64:
        raise ValueError("limit is too small to hold a message")
    parts: list[str] = []
    rest, reopen = text, ""
    while utf16_size(reopen + rest) > limit:
        cut = _cut(rest, limit - utf16_size(reopen + _CLOSE))
        chunk, rest = reopen + rest[:cut], rest[cut:].lstrip("\n")
        reopen = ""
        if chunk.count("```") % 2 == 1:
            reopen = chunk[chunk.rfind("```") :].split("\n", 1)[0] + "\n"
            chunk = chunk.rstrip("\n") + _CLOSE
        parts.append(chunk.rstrip())
    if rest or not parts:
        parts.append(reopen + rest)
    return parts
