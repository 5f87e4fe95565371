"""What a process keeps on its own while its shared store is down: bounded, in memory.

- dedupe marks (also a mirror of recent marks made while the store was up, so that a platform's
  redelivery right at the start of an outage is still caught),
- the turns written meanwhile (served as the conversation's history, written back later),
- pending answers.

Everything has a cap; what falls off the end is counted so the recovery log can say so.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from core.memory.base import PENDING_SEPARATOR, answered_by
from core.types import ConversationKey, Turn

__all__ = ["Fallback", "Written"]

MAX_CLAIMS = 50_000  # ~10 MB of tokens at most; a busy hour of messages
MAX_WRITES = 5_000  # appends (two turns each) kept for the write-back
MAX_PENDING = 1_000


@dataclass(slots=True)
class _Claim:
    expires: float
    shared: bool  # already in the store; False: made locally and still to be written back


@dataclass(slots=True, eq=False)
class Written:
    """One ``append`` made while the store was down."""

    key: ConversationKey
    turns: list[Turn]
    retention: float
    at: float = field(default=0.0)


class Fallback:
    """The local state of a ``ResilientStore``; not safe across threads (one event loop)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._claims: OrderedDict[str, _Claim] = OrderedDict()
        self.writes: deque[Written] = deque()
        self._pending: OrderedDict[str, tuple[ConversationKey, str, float]] = OrderedDict()
        self.dropped = 0  # writes lost to the cap since the last recovery

    # -- dedupe ------------------------------------------------------------------------------

    def claim(self, token: str, *, ttl: float, shared: bool) -> bool:
        """Mark ``token`` as seen here; False when it already was (and has not expired)."""
        now = self._clock()
        found = self._claims.get(token)
        if found is not None and found.expires > now:
            return False
        self._claims[token] = _Claim(expires=now + ttl, shared=shared)
        self._claims.move_to_end(token)
        while len(self._claims) > MAX_CLAIMS:
            self._claims.popitem(last=False)
        return True

    def unshared_claims(self) -> list[tuple[str, float]]:
        """(token, seconds left) of live marks made while the store was down."""
        now = self._clock()
        return [(t, c.expires - now) for t, c in self._claims.items() if not c.shared and c.expires > now]

    def shared_claim(self, token: str) -> None:
        if (found := self._claims.get(token)) is not None:
            found.shared = True

    # -- turns -------------------------------------------------------------------------------

    def append(self, key: ConversationKey, turns: Sequence[Turn], *, retention: float) -> None:
        self.writes.append(Written(key=key, turns=list(turns), retention=retention, at=self._clock()))
        while len(self.writes) > MAX_WRITES:
            self.writes.popleft()
            self.dropped += 1

    def history(self, key: ConversationKey, *, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        turns = [t for w in self.writes if w.key == key for t in w.turns]
        return turns[-limit:]

    def keeps(self, key: ConversationKey) -> bool:
        """True while turns of ``key`` wait to be written back."""
        return any(w.key == key for w in self.writes)

    def written(self, item: Written) -> None:
        """``item`` reached the store: forget it here."""
        with suppress(ValueError):  # erased meanwhile
            self.writes.remove(item)

    def clear(self, key: ConversationKey) -> None:
        self.writes = deque(w for w in self.writes if w.key != key)
        self._pending.pop(key.id, None)

    def forget_user(self, *, platform: str, tenant: str, user_id: str) -> None:
        """Drop the user's turns and the answers to them."""
        kept: deque[Written] = deque()
        for item in self.writes:
            if (item.key.platform, item.key.tenant) == (platform, tenant):
                mine = answered_by(item.turns, user_id)
                item.turns = [t for i, t in enumerate(item.turns) if i not in mine]
            if item.turns:
                kept.append(item)
        self.writes = kept

    # -- pending answers ---------------------------------------------------------------------

    def put_pending(self, key: ConversationKey, text: str, *, ttl: float) -> None:
        now = self._clock()
        if (kept := self._pending.get(key.id)) is not None and kept[2] > now:
            text = kept[1] + PENDING_SEPARATOR + text
        self._pending[key.id] = (key, text, now + ttl)
        self._pending.move_to_end(key.id)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    def has_pending(self, key: ConversationKey) -> bool:
        found = self._pending.get(key.id)
        return found is not None and found[2] > self._clock()

    def pop_pending(self, key: ConversationKey) -> str | None:
        found = self._pending.pop(key.id, None)
        if found is None or found[2] <= self._clock():
            return None
        return found[1]

    def pending(self) -> list[tuple[ConversationKey, str, float]]:
        """(key, text, seconds left) of live pending answers."""
        now = self._clock()
        return [(k, text, exp - now) for k, text, exp in self._pending.values() if exp > now]

    def pending_written(self, key: ConversationKey, text: str) -> None:
        found = self._pending.get(key.id)
        if found is not None and found[1] == text:  # not replaced meanwhile
            del self._pending[key.id]

    @property
    def size(self) -> int:
        """Items still to be written back."""
        return len(self.writes) + len(self.pending()) + len(self.unshared_claims())
