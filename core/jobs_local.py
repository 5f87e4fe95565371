"""The in-process job queue of the embedded store: the same contract, nothing survives the process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace

from core.jobs import Claim, Job

__all__ = ["ClaimSeen", "LocalQueue", "LocalTurns"]

log = logging.getLogger(__name__)

ClaimSeen = Callable[[str, float], Awaitable[bool]]
"""Claims a dedupe token for so many seconds; False when it was claimed before."""


class LocalTurns:
    """Per-conversation tickets in this process: jobs of one conversation run in put order."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._served: dict[str, int] = {}
        self._changed = asyncio.Condition()

    def take(self, conversation: str) -> int:
        """The next ticket of a conversation."""
        ticket = self._next.get(conversation, 0) + 1
        self._next[conversation] = ticket
        return ticket

    @asynccontextmanager
    async def hold(self, conversation: str, ticket: int, *, wait: float) -> AsyncIterator[None]:
        """Wait until the tickets before ``ticket`` are served (at most ``wait`` s), then hold the turn."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._served.get(conversation, 0) >= ticket - 1), wait
                )
            except TimeoutError:
                log.warning("an earlier message is still unanswered; answering this one anyway")
        try:
            yield
        finally:
            async with self._changed:
                self._served[conversation] = max(self._served.get(conversation, 0), ticket)
                if self._served[conversation] >= self._next.get(conversation, 0):
                    # Nothing waits in this conversation: forget it, so the maps stay small.
                    self._served.pop(conversation, None)
                    self._next.pop(conversation, None)
                self._changed.notify_all()


class LocalQueue:
    """Jobs in this process only: ordered per conversation, lost if the process dies.

    Args:
        claim: claims a dedupe token for a lifetime (the store's ``claim``); without it,
            every message counts as new.
    """

    durable = False

    def __init__(self, claim: ClaimSeen | None = None) -> None:
        self._turns = LocalTurns()
        self._claim = claim

    async def put(self, job: Job, *, seen: Mapping[str, float] | None = None) -> Claim | None:
        for token, ttl in (seen or {}).items():
            if self._claim is not None and not await self._claim(token, ttl):
                return None
        ticket = self._turns.take(job.inbound.key.id)
        return Claim(job=replace(job, ticket=ticket))

    async def park(self, jobs: Sequence[Job]) -> None:
        return None  # one process: its puts are in order already

    async def renew(self, claims: Sequence[Claim]) -> set[str]:
        return {claim.entry for claim in claims}

    async def takeover(self, *, count: int) -> list[Claim]:
        return []

    async def release(self, claims: Sequence[Claim]) -> None:
        return None

    async def done(self, claim: Claim) -> None:
        return None

    async def mark(self, claim: Claim, name: str, value: str) -> bool:
        return True  # nobody else runs this process's jobs

    def turn(self, claim: Claim, *, wait: float) -> AbstractAsyncContextManager[None]:
        return self._turns.hold(claim.job.inbound.key.id, claim.job.ticket, wait=wait)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
