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
    handoff.written(True)
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
    offered = asyncio.create_task(handoff.offer(job))
    assert await handoff.wait(1.0) == "딱 맞춘 답"
    handoff.written(True)
    assert await offered is True


async def test_an_answer_whose_response_could_not_be_written_goes_back_to_the_job() -> None:
    handoff = Handoff()
    offered = asyncio.create_task(handoff.offer(asyncio.create_task(answer("답"))))
    assert await handoff.wait(5.0) == "답"
    handoff.written(False)  # Kakao had gone (or the process is going): the job delivers it
    assert await offered is False


async def test_a_request_that_ends_without_writing_its_answer_leaves_it_to_the_job() -> None:
    handoffs = Handoffs()
    handoff = handoffs.open("job-1")
    offered = asyncio.create_task(handoff.offer(asyncio.create_task(answer("답"))))
    assert await handoff.wait(5.0) == "답"
    handoffs.close("job-1")  # say, building the response failed
    assert await offered is False


async def test_handoffs_are_found_by_job_until_closed() -> None:
    handoffs = Handoffs()
    opened = handoffs.open("job-1")
    assert handoffs.get("job-1") is opened and handoffs.get("job-2") is None
    handoffs.close("job-1")
    assert handoffs.get("job-1") is None  # so is a job taken over in another process
