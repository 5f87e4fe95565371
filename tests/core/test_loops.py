"""Loops stop on a flag, so a library that swallows a cancellation cannot keep them running."""

from __future__ import annotations

import asyncio
import contextlib

from core.loops import Loop


async def test_a_loop_stops_even_when_its_round_swallows_the_cancellation() -> None:
    # What redis-py does now and then (redis/redis-py#2028): the cancel is caught mid-command
    # and the coroutine returns normally. Stopped by cancel() alone, this loop would run for ever.
    rounds: list[int] = []
    entered = asyncio.Event()

    async def swallowing() -> None:
        rounds.append(1)
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as the library does
            await asyncio.sleep(0.05)

    loop = Loop(swallowing, every=0.001, name="swallowing")
    await entered.wait()
    loop.task.cancel()  # lost inside the round
    async with asyncio.timeout(5):
        await loop.stop(timeout=5)
    assert loop.task.done() and loop.stopped
    seen = len(rounds)
    await asyncio.sleep(0.05)  # time for more rounds, were it still running
    assert len(rounds) == seen


async def test_a_round_that_returns_false_ends_the_loop_and_at_once_skips_the_first_pause() -> None:
    rounds: list[int] = []
    ran = asyncio.Event()

    async def twice() -> bool:
        rounds.append(1)
        ran.set()
        return len(rounds) < 2

    loop = Loop(twice, every=60.0, name="twice", at_once=True)
    async with asyncio.timeout(5):
        # At once, then after a 60 s pause: only the first has run within the timeout.
        await ran.wait()
    assert rounds == [1] and not loop.task.done()
    await loop.stop()
    assert loop.task.done()

    quick = Loop(twice, every=0.001, name="quick")
    async with asyncio.timeout(5):
        await quick.task
    assert rounds == [1, 1]


async def test_stop_gives_up_on_a_round_that_never_ends() -> None:
    async def stuck() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return  # ends when cancelled

    loop = Loop(stuck, every=0.001, name="stuck", at_once=True)
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await loop.stop(timeout=0.05)
    assert loop.task.done()
