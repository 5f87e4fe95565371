"""Answers as they grow: chat streaming, its post-and-edit fallback, pacing, splitting, failures."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

import pytest

from adapters.slack import DoorOptions
from adapters.slack.writer import POST_LIMIT, STREAM_LIMIT
from core.errors import LLMUnavailable
from core.messages import say
from core.types import ChatMessage, ConversationKey, Turn
from tests.adapters.slack.conftest import Door, payload, running_door
from tests.support.fakes import ScriptedLLM

MENTION = "slack_event_app_mention_bolt.json"
THREAD = "1595926230.009600"
DM = "slack_event_message_im_assistant_thread.json"
KOREAN = "<@W111> 회의록 요약해 주세요"  # the apology follows the asker's language


class TricklingLLM(ScriptedLLM):
    """Yields its answer a few characters at a time with a pause between, like a real model."""

    def __init__(self, answer: str, *, pause: float) -> None:
        super().__init__(answer, chunk=3)
        self._pause = pause

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int | None = None,
    ) -> AsyncIterator[str]:
        async for delta in super().stream(
            messages, model=model, temperature=temperature, max_tokens=max_tokens
        ):
            yield delta
            await asyncio.sleep(self._pause)  # the model's pace, not a wait for the door


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_stream_grows_in_place_at_most_once_per_interval() -> None:
    answer = "스트리밍으로 답변이 조금씩 자라나요. " * 6
    options = DoorOptions(write_interval=0.2)
    async with running_door(options=options, llm=TricklingLLM(answer, pause=0.02)) as door:
        await door.post(payload(MENTION))
        await door.settle()
        [message] = door.api.thread("C111", THREAD)
        assert message.text == answer and message.streamed
        writes = [c for c in door.api.calls if c.method.startswith("chat.")]
        assert (writes[0].method, writes[-1].method) == ("chat.startStream", "chat.stopStream")
        assert len(door.api.called("chat.appendStream")) >= 2
        assert min(gaps([c.at for c in writes])) >= 0.2 * 0.8


async def test_without_streaming_the_answer_is_posted_then_edited_at_most_once_per_interval() -> None:
    answer = "**수정**으로 답변이 조금씩 자라나요. " * 6
    options = DoorOptions(write_interval=0.2)
    async with running_door(options=options, llm=TricklingLLM(answer, pause=0.02), streaming=False) as door:
        await door.post(payload(MENTION))
        await door.settle()
        [message] = door.api.thread("C111", THREAD)
        assert not message.streamed and message.edits >= 2
        assert message.text.startswith("*수정*\u200b으로 답변이") and "**" not in message.text
        [refused] = [c for c in door.api.calls if c.method == "chat.startStream"]
        writes = [c.at for c in door.api.calls if c.method in ("chat.postMessage", "chat.update")]
        assert min(gaps(writes)) >= 0.2 * 0.8 and refused.at < writes[0]

        # Slack said it has no streaming at all: the next answer does not ask again.
        await door.post(payload(MENTION, ts="1595926231.000100"))
        await door.settle()
        assert len(door.api.called("chat.startStream")) == 1


async def test_a_stream_that_breaks_midway_is_finished_by_editing() -> None:
    answer = "가나다라마바사아자차카타파하 " * 20
    async with running_door(llm=TricklingLLM(answer, pause=0.005)) as door:
        door.api.fail("chat.appendStream", "message_not_in_streaming_state", times=5)
        await door.post(payload(MENTION))
        await door.settle()
        [message] = door.api.thread("C111", THREAD)
        assert message.streamed and message.edits >= 1
        assert message.text == answer.strip()


async def test_llm_failure_midway_ends_with_a_korean_apology_line() -> None:
    text = "이 답변은 중간에 끊겨요. 그래도 사과는 남아요."
    llm = ScriptedLLM(text, chunk=4)
    llm.fail_with, llm.fail_after = LLMUnavailable("down"), 3
    async with running_door(llm=llm) as door:
        await door.post(payload(MENTION, text=KOREAN))
        await door.settle()
        [message] = door.api.thread("C111", THREAD)
        apology = say("llm_failed_midway", lang="ko")
        assert message.text == text[:12] + "\n\n" + apology
        assert not message.streaming


async def test_llm_failure_before_any_text_is_an_apology(door: Door) -> None:
    door.llm.fail_with = LLMUnavailable("down")
    await door.post(payload(MENTION, text=KOREAN))
    await door.settle()
    [message] = door.api.thread("C111", THREAD)
    assert message.text == say("llm_failed", lang="ko")


async def test_a_broken_store_midway_still_gets_an_apology(door: Door) -> None:
    async def broken(key: ConversationKey, *, limit: int) -> list[Turn]:
        raise RuntimeError("disk full")

    door.store.history = broken  # type: ignore[method-assign]
    await door.post(payload(DM, thread_ts=None, text="연차 규정 알려 줘"))
    await door.settle()
    [message] = door.api.thread("D111")
    assert message.text == say("llm_failed", lang="ko")


def paragraphs(count: int, size: int) -> list[str]:
    return [f"{n}번 문단: " + "가나다라마 " * (size // 6) for n in range(count)]


async def test_long_posted_answer_continues_in_further_messages_between_paragraphs() -> None:
    parts = paragraphs(6, 1400)
    llm = ScriptedLLM("\n\n".join(parts), chunk=200)
    async with running_door(llm=llm) as door:
        await door.post(payload(DM, thread_ts=None))
        await door.settle()
        messages = door.api.thread("D111")
        assert len(messages) >= 3
        assert all(len(m.text) <= POST_LIMIT + 100 for m in messages)
        texts = [m.text for m in messages]
        assert " ".join(texts).split() == " ".join(parts).split()  # nothing lost, nothing added
        assert all(t.endswith("가나다라마") for t in texts)  # each message ends with a whole paragraph
        assert all(t[0].isdigit() for t in texts)  # and the next starts with one


async def test_long_streamed_answer_continues_in_a_new_stream() -> None:
    parts = paragraphs(8, 1600)
    llm = ScriptedLLM("\n\n".join(parts), chunk=400)
    async with running_door(llm=llm) as door:
        await door.post(payload(MENTION))
        await door.settle()
        messages = door.api.thread("C111", THREAD)
        assert len(messages) == 2 and all(m.streamed and not m.streaming for m in messages)
        assert all(len(m.text) <= STREAM_LIMIT for m in messages)
        assert "".join(m.text for m in messages) == "\n\n".join(parts)
        assert messages[1].text.startswith("6번 문단") or messages[1].text.startswith("5번 문단")


async def test_429_is_waited_out_as_retry_after_says(door: Door) -> None:
    door.api.throttle("chat.startStream", retry_after=1)
    await door.post(payload(MENTION))
    await door.settle()
    [limited] = [c for c in door.api.calls if c.status == 429]
    [started] = door.api.called("chat.startStream")
    assert started.at - limited.at >= 1.0
    [message] = door.api.thread("C111", THREAD)
    assert message.text == "네, **확인**했어요."


async def test_when_slack_will_not_take_the_answer_the_failure_is_logged_and_contained(
    door: Door, caplog: pytest.LogCaptureFixture
) -> None:
    door.api.fail("chat.postMessage", "not_in_channel", times=5)
    await door.post(payload(DM, thread_ts=None, text="연차 규정 알려 줘"))
    await door.settle()
    assert not door.api.messages
    assert "answer not delivered to Slack" in caplog.text
    assert "background task" not in caplog.text  # handled, not a crashed task
