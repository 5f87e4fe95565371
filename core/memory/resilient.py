"""A store that keeps the service answering while its shared store (Redis) is down.

The first failed operation switches it to degraded mode, logged once. While degraded it does
not touch the shared store at all, so answers do not wait on it, and:

- dedupe marks and turn locks live in this process (duplicates are still caught here, and so
  are redeliveries of messages marked shortly before the outage);
- answers kept for a user's next message are still tried on the shared store (for half a
  second: it may be back before the probe notices), as any process may answer that message,
  and kept here only when it does not answer;
- a conversation's history is what was said in this process during the outage;
- turns are kept (bounded) and written back when the store returns;
- summaries and personal facts are left out of prompts; changing facts, reset, erasure and
  export refuse with ``StoreError`` (the door apologises) rather than pretend to succeed.

A background probe PINGs the store with exponential backoff; when it answers, what was kept
is written back and normal mode resumes, logged once. Nothing here ever exits the process.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Literal, TypeVar

from core.errors import ErasureIncomplete, StoreError
from core.locks import KeyedLocks
from core.loops import Loop
from core.memory.base import PENDING_SEPARATOR, Remembered, Store, UserExport
from core.memory.fallback import Fallback
from core.types import ConversationKey, Fact, StoredTurn, Summary, Turn, UserKey

__all__ = ["ResilientStore"]

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0  # seconds a PING may take before the store counts as still down
PENDING_TRY = 0.5  # while degraded, how long a kept answer's put or pop tries the shared store

T = TypeVar("T")


class _Down(enum.Enum):
    DOWN = "down"  # the shared store was not used: fall back


class ResilientStore:
    """The Store port around a shared store, with a local fallback during outages.

    Args:
        inner: the shared store; owned: ``close`` closes it.
        kind: what the inner store is, for logs ("redis").
        retry_min: seconds before the first probe after a failure.
        retry_max: the longest pause between probes.
        clock: monotonic time.
    """

    def __init__(
        self,
        *,
        inner: Store,
        kind: str = "store",
        retry_min: float = 0.25,
        retry_max: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.kind = kind
        self._retry = (retry_min, retry_max)
        self._clock = clock
        self._local = Fallback(clock=clock)
        self._locks = KeyedLocks()
        self._since: float | None = None  # when the outage began; None while healthy
        self._healthy = asyncio.Event()
        self._healthy.set()
        self._probe: Loop | None = None
        self._flusher: Loop | None = None
        self._delay = retry_min

    # -- state -------------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        return self._since is not None

    @property
    def degraded_for(self) -> float:
        """Seconds since the outage began (0 while healthy)."""
        return 0.0 if self._since is None else self._clock() - self._since

    @property
    def unsynced(self) -> int:
        """Items kept locally that still have to be written back."""
        return self._local.size

    async def wait_healthy(self) -> None:
        """Return once the shared store is used again (at once when it is)."""
        await self._healthy.wait()

    async def wait_written_back(self) -> None:
        """Return once the turns kept during the last outage are in the shared store (or it
        failed again meanwhile)."""
        if self._flusher is not None:
            await asyncio.wait({self._flusher.task})

    def _failed(self, error: StoreError) -> None:
        if isinstance(error, ErasureIncomplete):  # the store works; the erasure did not
            raise error
        if self._since is not None:
            return
        self._since = self._clock()
        self._healthy.clear()
        log.warning("%s unavailable (%s): answering without shared memory until it is back", self.kind, error)
        self._delay = self._retry[0]
        # Stopped by a flag, not by cancelling: see core/loops.py.
        self._probe = Loop(self._recover, every=lambda: self._delay, name=f"{self.kind}-probe")

    async def _recover(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self.inner.ping()
            await self._write_back_marks()
        except (StoreError, TimeoutError, OSError) as error:
            log.debug("%s still unavailable: %s", self.kind, type(error).__name__)
            self._delay = min(self._delay * 2, self._retry[1])
            return True  # probe again after the next pause
        log.warning(
            "%s is back after %.0f s; what was kept meanwhile is written back%s",
            self.kind,
            self.degraded_for,
            f" except {self._local.dropped} turns over the cap" if self._local.dropped else "",
        )
        self._local.dropped = 0
        self._since = None
        self._healthy.set()
        if self._local.writes and (self._flusher is None or self._flusher.task.done()):
            # In the background: under load turns keep coming, and waiting for an empty buffer
            # kept a process on its local memory for half a minute after Redis was back. One at
            # a time: after a flap the last one may still be writing, and goes on.
            self._flusher = Loop(
                self._write_back_turns, every=0.0, at_once=True, name=f"{self.kind}-write-back"
            )
        return False

    async def _write_back_marks(self) -> None:
        # Dedupe marks and pending answers (few) go back before the shared store is used again.
        for token, left in self._local.unshared_claims():
            await self.inner.claim(token, ttl=left)
            self._local.shared_claim(token)
        for key, text, left in self._local.pending():
            await self.inner.put_pending(key, text, ttl=left)
            self._local.pending_written(key, text)

    async def _write_back_turns(self) -> bool:
        # Oldest first; a conversation with turns still here appends behind them (``append``), so
        # its history keeps its order while the others use the shared store at once.
        while self._local.writes and self._since is None:
            item = self._local.writes[0]
            try:
                await self.inner.append(item.key, item.turns, retention=item.retention)
            except StoreError as error:
                self._failed(error)  # down again: the probe writes the rest back later
                return False
            self._local.written(item)
        return False

    async def _shared(self, call: Callable[[], Awaitable[T]]) -> T | Literal[_Down.DOWN]:
        """``call()`` on the shared store, or DOWN when it is down (now, or found so by this call)."""
        if self._since is None:
            try:
                return await call()
            except StoreError as error:
                self._failed(error)
        return _Down.DOWN

    def _unavailable(self) -> StoreError:
        return StoreError(f"{self.kind} is unavailable; try again when it is back")

    # -- conversations: a local fallback -----------------------------------------------------

    async def claim(self, token: str, *, ttl: float) -> bool:
        won = await self._shared(lambda: self.inner.claim(token, ttl=ttl))
        if won is _Down.DOWN:
            return self._local.claim(token, ttl=ttl, shared=False)
        if won:  # mirrored, so a redelivery during an outage is still caught here
            self._local.claim(token, ttl=ttl, shared=True)
        return won

    async def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        found = await self._shared(lambda: self.inner.history(key, limit=limit))
        if found is _Down.DOWN:
            return self._local.history(key, limit=limit)
        if self._local.writes and self._local.keeps(key):  # still being written back
            return [*found, *self._local.history(key, limit=limit)][-limit:] if limit > 0 else []
        return found

    async def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        if self._since is None and self._local.writes and self._local.keeps(key):
            self._local.append(key, turns, retention=retention)  # behind its turns being written back
            return
        if await self._shared(lambda: self.inner.append(key, turns, retention=retention)) is _Down.DOWN:
            self._local.append(key, turns, retention=retention)

    async def turns_after(self, key: ConversationKey, *, seq: int) -> list[StoredTurn]:
        found = await self._shared(lambda: self.inner.turns_after(key, seq=seq))
        return [] if found is _Down.DOWN else found  # nothing is folded into summaries meanwhile

    async def summary(self, key: ConversationKey) -> Summary:
        found = await self._shared(lambda: self.inner.summary(key))
        return Summary() if found is _Down.DOWN else found

    async def save_summary(
        self, key: ConversationKey, summary: Summary, *, replaces: Summary, folded: Sequence[StoredTurn]
    ) -> bool:
        saved = await self._shared(
            lambda: self.inner.save_summary(key, summary, replaces=replaces, folded=folded)
        )
        return saved is True

    # Answers kept for a user's next message are found by whichever process answers it: they go
    # to the shared store whenever it answers, even while this process still counts it as down
    # (its probe backs off to seconds). Kept here instead, one was missed by the next message's
    # process after a Redis restart, and came a message late (the three-door soak).

    async def _pending_shared(self, call: Callable[[], Awaitable[T]]) -> T | Literal[_Down.DOWN]:
        if self._since is None:
            return await self._shared(call)
        try:
            async with asyncio.timeout(PENDING_TRY):  # a vanished host must not hold the answer
                return await call()
        except (StoreError, TimeoutError):
            return _Down.DOWN

    async def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        # Behind one kept here during the outage, it stays here too, in order.
        if self._local.has_pending(key) or not await self._put_shared(key, text, ttl=ttl):
            self._local.put_pending(key, text, ttl=ttl)

    async def _put_shared(self, key: ConversationKey, text: str, *, ttl: float) -> bool:
        done = await self._pending_shared(lambda: self.inner.put_pending(key, text, ttl=ttl))
        return done is not _Down.DOWN

    async def pop_pending(self, key: ConversationKey) -> str | None:
        found = await self._pending_shared(lambda: self.inner.pop_pending(key))
        shared = None if found is _Down.DOWN else found
        kept = [text for text in (shared, self._local.pop_pending(key)) if text]
        return PENDING_SEPARATOR.join(kept) or None

    def lock(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        return self._hold(key)

    @asynccontextmanager
    async def _hold(self, key: ConversationKey) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if self._since is None:
                try:
                    await stack.enter_async_context(self.inner.lock(key))
                except StoreError as error:
                    self._failed(error)
            if self._since is not None:
                await stack.enter_async_context(self._locks.hold(key.id))
            yield

    # -- people: facts are left out; changes refuse rather than pretend ----------------------

    async def facts(self, user: UserKey) -> list[Fact]:
        found = await self._shared(lambda: self.inner.facts(user))
        return [] if found is _Down.DOWN else found

    async def remember(self, user: UserKey, text: str, *, limit: int, retention: float) -> Remembered:
        done = await self._shared(lambda: self.inner.remember(user, text, limit=limit, retention=retention))
        if done is _Down.DOWN:
            raise self._unavailable()
        return done

    async def forget_fact(self, user: UserKey, number: int) -> Fact | None:
        found = await self._shared(lambda: self.inner.forget_fact(user, number))
        if found is _Down.DOWN:
            raise self._unavailable()
        return found

    async def clear(self, key: ConversationKey) -> None:
        self._local.clear(key)
        if await self._shared(lambda: self.inner.clear(key)) is _Down.DOWN:
            raise self._unavailable()

    async def forget_user(self, *, platform: str, tenant: str, user_id: str) -> int:
        # What is kept here goes at once; the shared store must be erased too before "done".
        self._local.forget_user(platform=platform, tenant=tenant, user_id=user_id)
        removed = await self._shared(
            lambda: self.inner.forget_user(platform=platform, tenant=tenant, user_id=user_id)
        )
        if removed is _Down.DOWN:
            raise self._unavailable()
        return removed

    async def export_user(self, *, platform: str, tenant: str, user_id: str) -> UserExport:
        found = await self._shared(
            lambda: self.inner.export_user(platform=platform, tenant=tenant, user_id=user_id)
        )
        if found is _Down.DOWN:
            raise self._unavailable()
        return found

    # -- lifetime ----------------------------------------------------------------------------

    async def ping(self) -> None:
        """Never raises: a failure switches to degraded mode, which ``degraded`` reports."""
        await self._shared(self.inner.ping)

    async def close(self) -> None:
        for loop in (self._probe, self._flusher):
            if loop is not None:
                await loop.stop()
        if self._local.size:
            log.warning(
                "%s: %d items kept during the outage were not written back (%d turn writes, %d pending"
                " answers, %d dedupe marks)",
                self.kind,
                self.unsynced,
                len(self._local.writes),
                len(self._local.pending()),
                len(self._local.unshared_claims()),
            )
        try:
            await self.inner.close()
        except StoreError as error:
            log.warning("closing %s failed: %s", self.kind, type(error).__name__)
