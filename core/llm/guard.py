"""An LLM wrapper that protects the model and the service: a cap on concurrent calls and a
circuit breaker. Every call of the process goes through it (answers and summaries alike)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from core.breaker import BreakerState, CircuitBreaker
from core.errors import ConfigError, LLMCircuitOpen, LLMError, LLMTimeout, LLMUnavailable
from core.llm.base import LLM
from core.types import ChatMessage

__all__ = ["GuardedLLM"]


class GuardedLLM:
    """The LLM port around another LLM.

    At most ``concurrency`` calls stream at once in this process (the rest wait their turn, in
    order); with N processes the service makes at most N x ``concurrency`` calls. While the
    breaker is open a call raises ``LLMCircuitOpen`` at once, without touching the model.

    Args:
        inner: the model.
        breaker: decides whether the model is called; its state is what /readyz shows.
        concurrency: calls allowed to run at once.
    """

    def __init__(self, inner: LLM, *, breaker: CircuitBreaker, concurrency: int = 32) -> None:
        if concurrency < 1:
            raise ConfigError("the LLM concurrency must be at least 1", field="llm_concurrency")
        self.inner = inner
        self.breaker = breaker
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._running = 0

    @property
    def running(self) -> int:
        """Calls streaming now."""
        return self._running

    def _refuse(self) -> LLMCircuitOpen:
        return LLMCircuitOpen("the LLM circuit is open", retry_after=self.breaker.retry_after)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        if not self.breaker.allow():
            raise self._refuse()
        reached: bool | None = None  # None: we cannot tell (cancelled), so the breaker is not told
        try:
            async with self._slots:
                # It may have opened while this call waited for a slot.
                if self.breaker.state is BreakerState.OPEN:
                    raise self._refuse()
                self._running += 1
                try:
                    async for delta in self.inner.stream(
                        messages, model=model, temperature=temperature, max_tokens=max_tokens
                    ):
                        reached = True
                        yield delta
                finally:
                    self._running -= 1
            reached = True
        except LLMCircuitOpen:
            raise
        except (LLMUnavailable, LLMTimeout):
            reached = False
            raise
        except LLMError:
            reached = True  # it answered, if only to refuse (429, 4xx, a broken stream)
            raise
        finally:
            if reached is True:
                self.breaker.succeeded()
            elif reached is False:
                self.breaker.failed()
            else:
                self.breaker.released()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
