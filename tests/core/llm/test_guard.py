"""The guarded LLM: a cap on concurrent calls, and a breaker that stops calling a model that is down."""

from __future__ import annotations

import asyncio

import pytest

from core.breaker import BreakerState, CircuitBreaker
from core.errors import LLMBadResponse, LLMCircuitOpen, LLMError, LLMRateLimited, LLMTimeout, LLMUnavailable
from core.llm.guard import GuardedLLM
from core.types import ChatMessage
from tests.support.fakes import ScriptedLLM
from tests.support.redis import FakeClock

PROMPT = [ChatMessage(role="user", content="안녕하세요")]


async def ask(llm: GuardedLLM) -> str:
    return "".join([d async for d in llm.stream(PROMPT, model="m", temperature=0.2)])


async def settle() -> None:
    # Let every ready task run up to its next wait (a deterministic hand-over, not a delay).
    for _ in range(20):
        await asyncio.sleep(0)


def guarded(inner: ScriptedLLM, clock: FakeClock, *, threshold: int = 2, concurrency: int = 8) -> GuardedLLM:
    breaker = CircuitBreaker(threshold=threshold, cooldown=30.0, clock=clock)
    return GuardedLLM(inner, breaker=breaker, concurrency=concurrency)


async def test_no_more_than_the_cap_run_at_once_and_the_rest_wait_their_turn() -> None:
    inner = ScriptedLLM("네")
    inner.gate = asyncio.Event()
    llm = guarded(inner, FakeClock(), concurrency=2)
    calls = [asyncio.create_task(ask(llm)) for _ in range(5)]
    await inner.called(2)
    await settle()
    assert (len(inner.calls), llm.running) == (2, 2)
    inner.gate.set()
    assert await asyncio.gather(*calls) == ["네"] * 5
    assert llm.running == 0


async def test_a_model_that_is_down_is_not_called_while_the_circuit_is_open() -> None:
    clock = FakeClock(start=0.0)
    inner = ScriptedLLM("다시 왔어요")
    inner.fail_with = LLMUnavailable("connection refused")
    llm = guarded(inner, clock)
    for _ in range(2):
        with pytest.raises(LLMUnavailable):
            await ask(llm)
    with pytest.raises(LLMCircuitOpen) as refused:
        await ask(llm)
    assert refused.value.retry_after == 30.0
    assert len(inner.calls) == 2  # the third caller did not wait for a model that is down
    clock.advance(30)
    inner.fail_with = None
    assert await ask(llm) == "다시 왔어요"  # the trial
    assert llm.breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (LLMUnavailable("502"), True),
        (LLMTimeout("slow"), True),
        (LLMRateLimited("429", retry_after=3), False),
        (LLMBadResponse("400"), False),
    ],
)
async def test_only_failures_that_say_the_model_is_unreachable_count(error: LLMError, counts: bool) -> None:
    inner = ScriptedLLM()
    inner.fail_with = error
    llm = guarded(inner, FakeClock(), threshold=2)
    for _ in range(2):
        with pytest.raises(type(error)):
            await ask(llm)
    assert (llm.breaker.state is BreakerState.OPEN) is counts


async def test_an_answer_that_breaks_midway_counts_as_a_failure() -> None:
    inner = ScriptedLLM("긴 답변이 이어집니다", chunk=2)
    inner.fail_with, inner.fail_after = LLMUnavailable("reset"), 2
    llm = guarded(inner, FakeClock(), threshold=1)
    with pytest.raises(LLMUnavailable):
        await ask(llm)
    assert llm.breaker.state is BreakerState.OPEN


async def test_a_cancelled_trial_lets_the_next_message_try() -> None:
    clock = FakeClock(start=0.0)
    inner = ScriptedLLM("네")
    inner.fail_with = LLMUnavailable("down")
    llm = guarded(inner, clock, threshold=1)
    with pytest.raises(LLMUnavailable):
        await ask(llm)
    clock.advance(30)
    inner.fail_with = None
    inner.gate = asyncio.Event()
    trial = asyncio.create_task(ask(llm))
    await inner.called(2)
    with pytest.raises(LLMCircuitOpen):
        await ask(llm)  # the trial is running: others answer at once
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    inner.gate.set()
    assert await ask(llm) == "네"
    assert llm.breaker.state is BreakerState.CLOSED


async def test_calls_waiting_for_a_slot_give_up_when_the_circuit_opens_meanwhile() -> None:
    inner = ScriptedLLM("네")
    inner.gate = asyncio.Event()
    llm = guarded(inner, FakeClock(), threshold=1, concurrency=1)
    first = asyncio.create_task(ask(llm))
    await inner.called(1)
    waiting = asyncio.create_task(ask(llm))
    await settle()
    inner.fail_with = LLMUnavailable("down")  # the call holding the slot finds the model down
    inner.gate.set()
    with pytest.raises(LLMUnavailable):
        await first
    with pytest.raises(LLMCircuitOpen):
        await waiting
    assert len(inner.calls) == 1
