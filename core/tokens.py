"""Token counts for prompt budgets, exact for OpenAI's ``o200k_base`` (gpt-4o, gpt-4.1, o-series).

The exact counter is quicktok, which bundles the o200k vocabulary; tiktoken would download it at
run time, which an offline deployment cannot do. Without quicktok the counts fall back to a
per-character estimate calibrated against o200k on Korean business text (see ``_WEIGHTS``).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.types import ChatMessage

__all__ = ["count_messages", "count_tokens", "message_tokens", "truncate_tokens"]

log = logging.getLogger(__name__)

ENCODING = "o200k_base"

# OpenAI's documented chat overhead: every message costs ~3 tokens of framing
# (<|start|>role ... <|end|>), and every reply is primed with 3 more.
_PER_MESSAGE = 3
_REPLY_PRIMING = 3

# Fitted by least squares on 16 varied texts (Korean 해요체/하십시오체, chat, English, SQL, numbers),
# o200k_base. In aggregate o200k costs ~0.93 tokens per Hangul syllable and ~0.21 per character of
# English prose; split per character class, spaces carry most of the per-word cost. Held-out error
# is in tests/core/test_tokens.py.
_WEIGHTS = {"hangul": 0.65, "letter": 0.1, "digit": 0.6, "punct": 0.5, "space": 0.55, "other": 0.85}


@dataclass(frozen=True, slots=True)
class _Counter:
    count: Callable[[str], int]
    truncate: Callable[[str, int], str]
    exact: bool


def _char_weight(char: str) -> float:
    if "\uac00" <= char <= "\ud7a3":
        return _WEIGHTS["hangul"]
    if not char.isascii():
        return _WEIGHTS["other"]
    if char.isalpha():
        return _WEIGHTS["letter"]
    if char.isdigit():
        return _WEIGHTS["digit"]
    if char.isspace():
        return _WEIGHTS["space"]
    return _WEIGHTS["punct"]


def _estimate(text: str) -> int:
    return math.ceil(sum(_char_weight(c) for c in text))


def _estimate_truncate(text: str, limit: int) -> str:
    total = 0.0
    for index, char in enumerate(text):
        total += _char_weight(char)
        if math.ceil(total) > limit:
            return text[:index]
    return text


def _exact_counter() -> _Counter:
    import quicktok

    encoding = quicktok.get_encoding(ENCODING)

    def count(text: str) -> int:
        # ``count`` treats special-token strings such as "<|endoftext|>" as plain text, as
        # ``encode_ordinary`` does: user text must never be able to inject them.
        return int(encoding.count(text))

    def truncate(text: str, limit: int) -> str:
        ids = encoding.encode_ordinary(text)
        if len(ids) <= limit:
            return text
        # A token boundary can fall inside a multi-byte character; drop the broken tail.
        head = bytes(encoding.decode_bytes(ids[:limit])).decode("utf-8", errors="ignore")
        # Re-encoding a prefix can merge differently; shave characters until it fits.
        while head and count(head) > limit:
            head = head[:-1]
        return head

    return _Counter(count=count, truncate=truncate, exact=True)


@functools.cache
def _counter() -> _Counter:
    # Loaded on first use, once: importing core must stay cheap.
    try:
        return _exact_counter()
    except ImportError:
        log.warning("quicktok is not installed; token counts are estimates")
        return _Counter(count=_estimate, truncate=_estimate_truncate, exact=False)


def count_tokens(text: str) -> int:
    """The number of ``o200k_base`` tokens in a text (an estimate if quicktok is missing)."""
    if not text:
        return 0
    return _counter().count(text)


def count_messages(messages: Sequence[ChatMessage]) -> int:
    """The prompt tokens a Chat Completions request with these messages costs.

    Follows OpenAI's accounting: each message's role and content plus a fixed framing
    overhead, plus the tokens that prime the reply.
    """
    return _REPLY_PRIMING + sum(message_tokens(message) for message in messages)


def message_tokens(message: ChatMessage) -> int:
    """What one message adds to a prompt: its role, its content and the framing around them."""
    return _PER_MESSAGE + count_tokens(message.role) + count_tokens(message.content)


def truncate_tokens(text: str, limit: int) -> str:
    """The longest start of ``text`` that fits in ``limit`` tokens (the text itself if it fits)."""
    if limit <= 0:
        return ""
    return _counter().truncate(text, limit)
