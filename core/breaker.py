"""A circuit breaker: stop calling a model that is down, answer at once, try again later.

    closed ──(threshold consecutive failures, each within `window` of the last)──▶ open
    open ──(cooldown elapsed: the next call is let through as a trial)──▶ half-open
    half-open ──trial succeeds──▶ closed        half-open ──trial fails──▶ open (cooldown again)

Only failures that say the model is unreachable count (connection errors, 5xx, timeouts); a
429 or a refused request shows that it is up. While open, callers get ``allow() == False``
and answer with an apology instead of waiting for a timeout; while the trial runs, everyone
else does too. The clock is injectable, so tests move time instead of sleeping.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from core.errors import ConfigError

__all__ = ["BreakerState", "CircuitBreaker"]

log = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Counts failures of one dependency and decides whether to call it.

    Args:
        threshold: consecutive failures that open the circuit.
        cooldown: seconds the circuit stays open before a trial call.
        window: failures further apart than this do not add up.
        clock: monotonic time in seconds.
        name: what the breaker guards, for logs.
    """

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "LLM",
    ) -> None:
        if threshold < 1 or cooldown <= 0 or window <= 0:
            raise ConfigError("breaker: threshold >= 1, cooldown > 0 and window > 0", field="breaker")
        self.threshold = threshold
        self.cooldown = cooldown
        self.window = window
        self._clock = clock
        self._name = name
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._last_failure = 0.0
        self._opened_at = 0.0
        self._trial = False  # a half-open trial call is running

    @property
    def state(self) -> BreakerState:
        """The state as callers will find it (open turns half-open once the cooldown is over)."""
        if self._state is BreakerState.OPEN and self.retry_after == 0:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def retry_after(self) -> float:
        """Seconds until the next trial while open, else 0."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def allow(self) -> bool:
        """Whether to make a call now; a True in half-open makes this call the trial."""
        if self._state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN or self._trial:
            return False
        self._state = BreakerState.HALF_OPEN
        self._trial = True
        log.info("%s circuit half-open: trying one call", self._name)
        return True

    def succeeded(self) -> None:
        """A call reached the dependency (even if it refused the request)."""
        if self._state is not BreakerState.CLOSED:
            log.warning("%s circuit closed: calls go through again", self._name)
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial = False

    def failed(self) -> None:
        """A call found the dependency unreachable."""
        now = self._clock()
        if self._state is BreakerState.HALF_OPEN:
            self._open(now)
            log.info("%s circuit open again: the trial call failed", self._name)
            return
        if self._state is BreakerState.OPEN:
            return  # a call that started before the circuit opened
        if now - self._last_failure > self.window:
            self._failures = 0
        self._failures += 1
        self._last_failure = now
        if self._failures >= self.threshold:
            log.warning(
                "%s circuit open after %d failures: answering at once for %g s, then trying again",
                self._name,
                self._failures,
                self.cooldown,
            )
            self._open(now)

    def released(self) -> None:
        """A call ended without telling (cancelled): let another caller make the trial."""
        if self._state is BreakerState.HALF_OPEN:
            self._trial = False

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._trial = False
        self._failures = 0
