"""At most about one message per second per channel (Slack's chat.postMessage rule)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["ChannelPacer"]


class ChannelPacer:
    """Spaces this process's writes to one channel at least ``interval`` seconds apart.

    Every writer to a channel awaits ``wait(channel)`` before its Web API call. Slots are
    handed out in call order, so concurrent answers in one channel take turns.
    """

    def __init__(
        self, *, interval: float, clock: Callable[[], float] = time.monotonic, max_channels: int = 4096
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}
        self._max_channels = max_channels

    async def wait(self, channel: str) -> None:
        """Return when ``channel`` may take the next write."""
        now = self._clock()
        slot = max(now, self._next.get(channel, now))
        self._next[channel] = slot + self.interval
        if len(self._next) > self._max_channels:
            self._next = {c: t for c, t in self._next.items() if t > now}
        if slot > now:
            await asyncio.sleep(slot - now)
