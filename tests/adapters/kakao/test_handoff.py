"""A finished answer goes to the waiting skill request, or back to the job: never both, never neither."""

from __future__ import annotations

import asyncio

from adapters.kakao.handoff import Handoff, Handoffs


async def answer(text: str, ready: asyncio.Event | None = None) -> str:
    if ready is not None:
        await ready.wait()
    return text


async def test_a_quick_answer_goes_to_the_waiting_request() -> None:
    handoff = Handoff()
    job = asyncio.create_task(answer("답"))
    offered = asyncio.create_task(handoff.offer(job))
    assert await handoff.wait(5.0) == "답"
    assert await offered is True


async def test_a_slow_answer_stays_with_the_job() -> None:
    handoff, ready = Handoff(), asyncio.Event()
    job = asyncio.create_task(answer("늦은 답", ready))
    offered = asyncio.create_task(handoff.offer(job))
    assert await handoff.wait(0.01) is None  # the request gave up: the job delivers
    ready.set()
    assert await offered is False
    assert await job == "늦은 답"


async def test_an_answer_ready_before_the_request_waits_is_given_to_it() -> None:
    handoff = Handoff()
    job = asyncio.create_task(answer("딱 맞춘 답"))
    await job  # ready before the job even offers it
    assert await handoff.offer(job) is True
    assert await handoff.wait(0.0) == "딱 맞춘 답"


async def test_handoffs_are_found_by_job_until_closed() -> None:
    handoffs = Handoffs()
    opened = handoffs.open("job-1")
    assert handoffs.get("job-1") is opened and handoffs.get("job-2") is None
    handoffs.close("job-1")
    assert handoffs.get("job-1") is None  # so is a job taken over in another process
