"""The 1:1 stream's pace and fallbacks, with a fake clock and a recording sender."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from adapters.teams.connector import ConnectorError
from adapters.teams.stream import Pacing, Stream
from tests.support.botframework import stream_info


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Sender:
    """Records (time, activity); refuses whatever ``refuse`` says."""

    def __init__(self, clock: Clock, *, refuse: int = 0) -> None:
        self.clock = clock
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.refuse = refuse

    async def send(self, body: Mapping[str, Any]) -> str:
        info = stream_info(dict(body))
        if self.refuse and info is not None:
            raise ConnectorError(self.refuse, "BadArgument", "no streaming here")
        self.sent.append((self.clock.now, dict(body)))
        return "stream-1" if info is not None and info["streamType"] == "informative" else ""


async def test_updates_go_at_most_once_per_interval_and_the_final_waits_its_turn() -> None:
    clock = Clock()
    sender = Sender(clock)
    stream = Stream(sender, pacing=Pacing(stream_interval=1.0), clock=clock, sleep=clock.sleep)

    await stream.start("답변을 준비하고 있어요…")
    text = ""
    for at, delta in [(0.3, "가"), (0.6, "나"), (1.1, "다"), (1.5, "라"), (2.0, "마"), (2.3, "바")]:
        clock.now, text = at, text + delta
        await stream.update(text)
    await stream.finish(text)

    times = [at for at, _ in sender.sent]
    kinds = [(stream_info(body) or {}).get("streamType") for _, body in sender.sent]
    assert kinds == ["informative", "streaming", "streaming", "final"]
    assert times == [0.0, 1.1, 2.3, 3.3]
    assert all(round(b - a, 6) >= 1.0 for a, b in itertools.pairwise(times)), "never two within 1 s"
    assert [body["text"] for _, body in sender.sent[1:]] == ["가나다", "가나다라마바", "가나다라마바"]
    assert clock.slept == [1.0]


async def test_a_refused_start_falls_back_to_typing_and_plain_messages() -> None:
    clock = Clock()
    sender = Sender(clock, refuse=400)
    stream = Stream(sender, pacing=Pacing(stream_interval=1.0), clock=clock, sleep=clock.sleep)

    await stream.start("답변을 준비하고 있어요…")
    clock.now = 5.0
    await stream.update("부분")
    await stream.finish("전체 답변")

    assert [body["type"] for _, body in sender.sent] == ["typing", "message"]
    assert sender.sent[1][1]["text"] == "전체 답변"
    assert not stream.streaming
