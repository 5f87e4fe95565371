"""What the engine reports while it works, for metrics; adapters decide where it goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["LLMCall", "NullObserver", "Observer", "Outcome"]

Outcome = Literal[
    "answered", "partial", "apology", "duplicate", "command", "empty", "not_configured", "limited"
]


@dataclass(frozen=True, slots=True)
class LLMCall:
    """One LLM call as the engine saw it.

    Attributes:
        platform: the door the message came through.
        seconds: from the request to the last delta (or the failure).
        first_token_seconds: from the request to the first delta, None when none came.
        tokens_in: prompt tokens (counted offline).
        tokens_out: answer tokens (counted offline).
        error: the error class name, or "".
    """

    platform: str
    seconds: float
    first_token_seconds: float | None
    tokens_in: int
    tokens_out: int
    error: str = ""


class Observer(Protocol):
    """Receives the engine's events. Implementations must be cheap and never raise."""

    def message(self, platform: str, outcome: Outcome, *, seconds: float, scope: str = "") -> None:
        """A message was handled; ``seconds`` from its arrival to the end of its answer.

        ``scope`` says which rate limit refused a "limited" message ("user", "tenant").
        """
        ...

    def llm_call(self, call: LLMCall) -> None:
        """An LLM call finished or failed."""
        ...

    def error(self, kind: str) -> None:
        """Something failed that the user did not see as an error (store, summary...)."""
        ...


class NullObserver:
    """Reports nothing."""

    def message(self, platform: str, outcome: Outcome, *, seconds: float, scope: str = "") -> None:
        return None

    def llm_call(self, call: LLMCall) -> None:
        return None

    def error(self, kind: str) -> None:
        return None
