"""The LLM port: stream a chat completion as text deltas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from core.types import ChatMessage

__all__ = ["LLM"]


class LLM(Protocol):
    """A chat model behind the Chat Completions API, or a stand-in for it."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        """Yield the answer as text deltas.

        Raises:
            LLMError: a subclass saying why, after the client's own retries.
        """
        ...

    async def ping(self) -> None:
        """Raise ``LLMError`` when the model endpoint cannot be used."""
        ...

    async def close(self) -> None:
        """Release the HTTP client."""
        ...
