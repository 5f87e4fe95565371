"""Every error dari raises on purpose. One root; errors carry data, not HTTP statuses.

    DariError
    ├── ConfigError                 a setting or bot file is wrong (names the file and field)
    ├── StoreError                  the memory store failed or is unreachable
    │   └── ErasureIncomplete       data of a user was still found after erasing it; ``remaining``
    └── LLMError                    the language model did not answer
        ├── LLMNotConfigured        no LLM endpoint or key is set
        ├── LLMTimeout              no answer in time
        ├── LLMRateLimited          429 after all retries; ``retry_after`` in seconds if known
        ├── LLMUnavailable          connection failure or 5xx after all retries
        │   └── LLMCircuitOpen      not even tried: the model kept failing; ``retry_after`` in seconds
        └── LLMBadResponse          an answer we could not use (4xx, malformed stream)

Adapters map these to platform answers; only adapters know HTTP statuses.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DariError",
    "ErasureIncomplete",
    "LLMBadResponse",
    "LLMCircuitOpen",
    "LLMError",
    "LLMNotConfigured",
    "LLMRateLimited",
    "LLMTimeout",
    "LLMUnavailable",
    "StoreError",
]


class DariError(Exception):
    """Root of every error dari raises on purpose."""


class ConfigError(DariError):
    """A setting or a bot file is invalid.

    Attributes:
        source: the file or setting at fault.
        field: the field inside it, or "".
    """

    def __init__(self, message: str, *, source: str = "", field: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.field = field


class StoreError(DariError):
    """The memory store failed or cannot be reached."""


class ErasureIncomplete(StoreError):
    """Erasing a user's data was verified and something was still there.

    Attributes:
        remaining: how many items (turns, facts, summaries) were still found.
    """

    def __init__(self, message: str, *, remaining: int) -> None:
        super().__init__(message)
        self.remaining = remaining


class LLMError(DariError):
    """The language model did not give a usable answer."""


class LLMNotConfigured(LLMError):
    """No LLM endpoint or key is configured."""


class LLMTimeout(LLMError):
    """The LLM did not answer in time."""


class LLMRateLimited(LLMError):
    """The LLM kept answering 429.

    Attributes:
        retry_after: seconds the server asked us to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMUnavailable(LLMError):
    """The LLM could not be reached or kept failing with 5xx."""


class LLMCircuitOpen(LLMUnavailable):
    """The model was not called: it kept failing and the circuit breaker is open.

    Attributes:
        retry_after: seconds until the breaker lets a trial call through.
    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMBadResponse(LLMError):
    """The LLM answered with something we could not use."""
