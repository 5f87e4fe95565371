"""Durable work: an accepted message as a ``Job``, and the ``JobQueue`` port that keeps it until answered.

A door turns an accepted message into a job and hands it to the queue *before* it acknowledges
the platform. The queue keeps the job until the process running it says it is done; if that
process dies, another one takes the job over. ``LocalQueue`` is the in-process queue of the
embedded store (nothing survives the process); ``RedisQueue`` (core/memory/redis_jobs.py)
keeps jobs in a Redis Stream with a consumer group.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from core import safety
from core.types import ConversationKey, Inbound

__all__ = ["Claim", "Job", "JobQueue", "dump_job", "load_job", "new_job"]

_VERSION = 1


@dataclass(frozen=True, slots=True)
class Job:
    """One accepted message and where its answer goes.

    Attributes:
        id: unique, chosen when the message is accepted.
        door: the door that delivers the answer ("slack", "teams", "kakao").
        inbound: the message; its text is already masked, so no identifier is ever queued.
        target: the door's own JSON-safe description of where and how to answer.
        origin: the process that accepted it.
        accepted_at: epoch seconds.
        ticket: its place in its conversation (1, 2, ...); 0 when the queue keeps no order.
    """

    id: str
    door: str
    inbound: Inbound
    target: Mapping[str, Any]
    origin: str
    accepted_at: float
    ticket: int = 0


@dataclass(frozen=True, slots=True)
class Claim:
    """A job held by this process.

    Attributes:
        job: the job.
        entry: the queue's handle for it ("" for the in-process queue).
        attempt: 1 on the first run; more when this process took it over from another.
        marks: what earlier attempts recorded about their delivery (``JobQueue.mark``).
    """

    job: Job
    entry: str = ""
    attempt: int = 1
    marks: Mapping[str, str] = field(default_factory=dict)


def new_job(*, door: str, inbound: Inbound, target: Mapping[str, Any], origin: str) -> Job:
    """A fresh job; the message text is normalised and masked before it goes anywhere."""
    masked = replace(inbound, text=safety.mask(safety.normalize(inbound.text)))
    return Job(
        id=uuid.uuid4().hex,
        door=door,
        inbound=masked,
        target=dict(target),
        origin=origin,
        accepted_at=time.time(),
    )


def dump_job(job: Job) -> str:
    """The job as one JSON document."""
    inbound, key = job.inbound, job.inbound.key
    return json.dumps(
        {
            "v": _VERSION,
            "id": job.id,
            "door": job.door,
            "origin": job.origin,
            "accepted_at": job.accepted_at,
            "ticket": job.ticket,
            "key": [key.platform, key.tenant, key.conversation, key.thread, key.bot],
            "message_id": inbound.message_id,
            "user_id": inbound.user_id,
            "user_name": inbound.user_name,
            "text": inbound.text,
            "is_direct": inbound.is_direct,
            "received_at": inbound.received_at.isoformat(),
            "target": dict(job.target),
        },
        # ASCII escapes carry any string, even a lone surrogate from a broken client, through Redis.
        ensure_ascii=True,
    )


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise ValueError(f"job field {name!r} is not a string")
    return value


def load_job(raw: bytes | str) -> Job:
    """The job a ``dump_job`` document describes.

    Raises:
        ValueError: not a job document of this version.
    """
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise ValueError("not a job document of this version")
        platform, tenant, conversation, thread, bot = (str(part) for part in data["key"])
        target = data["target"]
        if not isinstance(target, dict):
            raise ValueError("job target is not an object")
        inbound = Inbound(
            key=ConversationKey(
                platform=platform, tenant=tenant, conversation=conversation, thread=thread, bot=bot
            ),
            message_id=_str(data, "message_id"),
            user_id=_str(data, "user_id"),
            text=_str(data, "text"),
            user_name=_str(data, "user_name"),
            is_direct=bool(data["is_direct"]),
            received_at=datetime.fromisoformat(_str(data, "received_at")),
        )
        return Job(
            id=_str(data, "id"),
            door=_str(data, "door"),
            inbound=inbound,
            target=target,
            origin=_str(data, "origin"),
            accepted_at=float(data["accepted_at"]),
            ticket=int(data["ticket"]),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"malformed job: {error}") from error


class JobQueue(Protocol):
    """Keeps accepted jobs until they are answered; shares them out when a process dies.

    A job put here belongs to the putting process at once. A process keeps its jobs by
    renewing them more often than the queue's lease; jobs whose process stopped renewing can
    be taken over by any other process.
    """

    @property
    def durable(self) -> bool:
        """True when jobs survive the death of the process that accepted them."""
        ...

    async def put(self, job: Job, *, seen: Mapping[str, float] | None = None) -> Claim | None:
        """Record the job (before the platform is acknowledged) and hold it for this process.

        ``seen`` are the message's dedupe tokens with their lifetimes (seconds): they are
        claimed with the job, so that a message is never marked seen without being queued.
        Returns None, recording nothing, when one of them was claimed before (a redelivery).
        The returned claim's job carries its ticket in its conversation.

        Raises:
            StoreError: the job could not be recorded.
        """
        ...

    async def park(self, jobs: Sequence[Job]) -> None:
        """Announce jobs this process held while the queue was away, before it ``put``s them:
        until each is put, a ``put`` of a later message of its conversation (by arrival,
        ``Job.accepted_at``), in any process, waits for it (briefly: its process may have died).
        So messages held by several processes through an outage keep their arrival order.

        Raises:
            StoreError: the queue did not answer.
        """
        ...

    async def renew(self, claims: Sequence[Claim]) -> set[str]:
        """Extend the lease of jobs this process runs; the entries it still holds."""
        ...

    async def takeover(self, *, count: int) -> list[Claim]:
        """Take up to ``count`` jobs whose process stopped renewing them (their ``attempt`` grows)."""
        ...

    async def release(self, claims: Sequence[Claim]) -> None:
        """Give unfinished jobs back at once, for another process to take over (on shutdown)."""
        ...

    async def done(self, claim: Claim) -> None:
        """The job is answered: forget it and pass its conversation's turn on. Call it inside
        ``turn``; a durable queue keeps trying through a short outage before it raises.

        Raises:
            StoreError: the job could not be removed (it will be taken over and delivered again).
        """
        ...

    async def mark(self, claim: Claim, name: str, value: str) -> bool:
        """Record a fact about the job's delivery that a later attempt must know. False, with
        nothing recorded, when the job is no longer this process's (another one took it over
        after this one stalled past the lease): stop delivering, the other one answers.

        Raises:
            StoreError: the queue did not answer (a durable queue tries through a short outage).
        """
        ...

    def turn(self, claim: Claim, *, wait: float) -> AbstractAsyncContextManager[None]:
        """Hold the job's turn in its conversation: wait (up to ``wait`` seconds) until every
        earlier job of the conversation is done. Leaving without ``done`` (cancelled) keeps later
        jobs waiting for whoever takes this one over, when the queue is durable."""
        ...

    async def ping(self) -> None:
        """Check that the queue answers.

        Raises:
            StoreError: it does not.
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
