"""Jobs: the JSON codec, masking before queueing, and the in-process queue's order per conversation."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from core.jobs import Claim, dump_job, load_job, new_job
from core.jobs_local import LocalQueue
from core.types import ConversationKey, Inbound

KEY = ConversationKey("slack", "E1:T1", "C1", thread="1700000000.000100", bot="formal")


def inbound(text: str = "안녕하세요", message_id: str = "C1:1700000000.000200") -> Inbound:
    return Inbound(
        key=KEY,
        message_id=message_id,
        user_id="W1",
        text=text,
        user_name="김민수",
        is_direct=False,
        received_at=datetime(2025, 3, 5, 1, 2, 3, tzinfo=UTC),
    )


def test_a_job_survives_its_json_whole() -> None:
    job = new_job(
        door="slack", inbound=inbound(), target={"channel": "C1", "first": ["a"]}, origin="host:1:ab"
    )
    again = load_job(dump_job(job))
    assert again == job
    assert again.inbound.received_at == datetime(2025, 3, 5, 1, 2, 3, tzinfo=UTC)
    assert len(job.id) == 32 and job.ticket == 0


def test_identifiers_are_masked_before_a_job_is_queued() -> None:
    job = new_job(door="kakao", inbound=inbound("제 번호는 010-1234-5678이에요"), target={}, origin="p")
    assert job.inbound.text == "제 번호는 [전화번호]이에요"
    assert "010-1234-5678" not in dump_job(job)


def test_any_string_goes_through_the_codec() -> None:
    job = new_job(door="teams", inbound=inbound(message_id="\ud800깨진"), target={"x": "\udfff"}, origin="p")
    raw = dump_job(job)
    raw.encode("ascii")  # escaped: Redis and SQLite take it
    assert load_job(raw) == job


@pytest.mark.parametrize(
    "raw",
    ["", "[]", '{"v": 2}', '{"v": 1}', json.dumps({"v": 1, "id": 5}), b"\xff"],
)
def test_what_is_not_a_job_is_refused(raw: str | bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # the message depends on what is wrong
        load_job(raw)


async def test_the_local_queue_runs_a_conversation_in_put_order() -> None:
    queue = LocalQueue()
    puts = [await queue.put(new_job(door="d", inbound=inbound(), target={}, origin="p")) for _ in range(3)]
    elsewhere = Inbound(key=ConversationKey("kakao", "b", "u"), message_id="m", user_id="u", text="t")
    other = await queue.put(new_job(door="d", inbound=elsewhere, target={}, origin="p"))
    claims = [claim for claim in puts if claim is not None]
    assert other is not None and [c.job.ticket for c in claims] == [1, 2, 3] and other.job.ticket == 1
    order: list[int] = []

    async def run(claim: Claim, gate: asyncio.Event | None = None) -> None:
        async with queue.turn(claim, wait=5.0):
            if gate is not None:
                await gate.wait()
            order.append(claim.job.ticket)

    gate = asyncio.Event()
    # Started last to first: the turns still go first to last.
    tasks = [asyncio.create_task(run(c)) for c in reversed(claims[1:])]
    first = asyncio.create_task(run(claims[0], gate))
    async with queue.turn(other, wait=5.0):
        order.append(0)  # another conversation does not wait
    gate.set()
    await asyncio.gather(first, *tasks)
    assert order == [0, 1, 2, 3]


async def test_a_turn_waits_only_so_long_for_an_earlier_job() -> None:
    queue = LocalQueue()
    await queue.put(new_job(door="d", inbound=inbound(), target={}, origin="p"))  # never runs
    second = await queue.put(new_job(door="d", inbound=inbound(), target={}, origin="p"))
    assert second is not None
    async with asyncio.timeout(2), queue.turn(second, wait=0.05):
        pass
