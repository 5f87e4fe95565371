"""Handing a finished answer from the job to the skill request that is still waiting for it.

A skill request waits a few seconds for its answer to come back inline. The answer is made by
the message's job, which runs in the same process (the accepting process takes its own jobs).
Exactly one of the two delivers: the request, if the answer is ready within its budget and its
response reaches Kakao; else the job (by callback or kept for the next message). Both sides
decide on the event loop, so the decision cannot race. The job counts as answered only once the
response is written: a process killed in between leaves the job to be taken over, and a response
that could not be written leaves the answer to the job. A job taken over by another process finds
no handoff and delivers itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["Handoff", "Handoffs"]


class Handoff:
    """One waiting skill request and its job."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self._answer: asyncio.Future[str] = loop.create_future()
        self._written: asyncio.Future[bool] = loop.create_future()
        self._deferred = asyncio.Event()

    async def wait(self, timeout: float) -> str | None:
        """The request's side: the answer, or None when it is not ready within ``timeout``
        (the job delivers it then)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._answer), timeout=timeout)
        except TimeoutError:
            if self._answer.done():
                return self._answer.result()
            self._deferred.set()
            return None

    def written(self, ok: bool) -> None:
        """The request's side, once it took the answer: whether its response went out."""
        if not self._written.done():
            self._written.set_result(ok)

    async def offer(
        self, answer: asyncio.Task[str], *, before: Callable[[], Awaitable[None]] | None = None
    ) -> bool:
        """The job's side: True when the waiting request took the answer and its response went
        out, False when the job must deliver it itself (the request gave up first, or could not
        write its response). ``before`` runs once the answer is ready, before the request gets it
        (the job marks that a response is being written)."""
        given_up = asyncio.create_task(self._deferred.wait())
        try:
            await asyncio.wait({answer, given_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            given_up.cancel()
        if self._deferred.is_set() or not answer.done():
            return False
        if before is not None:
            await before()
            if self._deferred.is_set():
                return False  # the request gave up meanwhile
        self._answer.set_result(answer.result())
        return await self._written


class Handoffs:
    """The skill requests of this process still waiting for their job, by job id."""

    def __init__(self) -> None:
        self._open: dict[str, Handoff] = {}

    def open(self, job_id: str) -> Handoff:
        handoff = self._open[job_id] = Handoff()
        return handoff

    def close(self, job_id: str) -> None:
        """The request is over: an answer it took and did not say it wrote was not written."""
        handoff = self._open.pop(job_id, None)
        if handoff is not None:
            handoff.written(False)

    def get(self, job_id: str) -> Handoff | None:
        return self._open.get(job_id)
