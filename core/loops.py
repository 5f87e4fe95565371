"""Background loops that stop when told, not only when cancelled.

redis-py's asyncio client can swallow a cancellation that arrives while a command is on the
wire (redis/redis-py#2028; measured here: a quarter of ``task.cancel()`` calls during a GET or
a lock renewal were lost). A loop that calls Redis and is stopped only by ``cancel()`` then runs
on, and whoever waits for it waits for ever: the soak run found conversation locks renewed for
minutes by renewers whose holders had finished, every later message of those conversations
waiting behind them. A ``Loop`` checks a stop flag between rounds, so one lost cancellation
costs at most one round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress

__all__ = ["Loop"]


class Loop:
    """Runs ``round`` after every pause of ``every`` seconds until ``stop`` or until ``round``
    returns False. ``every`` may be a function, called before each pause (back-off, jitter);
    with ``at_once`` the first round runs before the first pause.
    """

    def __init__(
        self,
        round: Callable[[], Awaitable[bool | None]],
        *,
        every: float | Callable[[], float],
        name: str,
        at_once: bool = False,
    ) -> None:
        self._round = round
        self._at_once = at_once
        self._every = every
        self._stopped = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=name)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    async def _run(self) -> None:
        if self._at_once and await self._round() is False:
            return
        while not self._stopped.is_set():
            pause = self._every() if callable(self._every) else self._every
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=pause)
                return
            if await self._round() is False:
                return

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop after the round in progress (at most ``timeout`` s, then cancel it)."""
        self._stopped.set()
        done, _ = await asyncio.wait({self.task}, timeout=timeout)
        if not done:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=timeout)
        if self.task.done() and not self.task.cancelled():
            self.task.exception()  # retrieved: a failed round was the round's to report
