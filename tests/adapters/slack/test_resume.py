"""An answer written again after its process died: the same Slack messages are edited, none added."""

from __future__ import annotations

import aiohttp

from adapters.slack.client import web_client
from adapters.slack.jobs import (
    command_inbound,
    from_command_target,
    from_message_target,
    to_command_target,
    to_message_target,
)
from adapters.slack.pacing import ChannelPacer
from adapters.slack.translate import SlackMessage, SlashCommand
from adapters.slack.writer import ReplyWriter, Target
from tests.support.slack_api import slack_api

TARGET = Target("C111", "1700000000.000100", "T111", "W222")


async def write(
    text: str, *, resume: list[str], streaming: bool = True, limit: int = 3500
) -> tuple[list[tuple[int, str]], list[str], dict[str, str]]:
    """Write ``text`` as a (resumed) answer; what was marked, the thread, and the API calls."""
    marked: list[tuple[int, str]] = []

    async def mark(index: int, ts: str) -> None:
        marked.append((index, ts))

    async with slack_api() as api, aiohttp.ClientSession() as session:
        for earlier in resume:  # what the attempt that died had started
            await web_client(token="x", base_url=api.url, session=session).chat_startStream(
                channel=TARGET.channel, thread_ts=TARGET.thread_ts, markdown_text=earlier
            )
        posted = [m.ts for m in api.thread(TARGET.channel, TARGET.thread_ts)]
        writer = ReplyWriter(
            client=web_client(token="x", base_url=api.url, session=session),
            pacer=ChannelPacer(interval=0.0),
            target=TARGET,
            streaming=streaming,
            post_limit=limit,
            resume=posted,
            on_message=mark,
        )
        await writer.add(text)
        await writer.finish()
        texts = [m.text for m in api.thread(TARGET.channel, TARGET.thread_ts)]
        calls = {c.method: c.params.get("ts", "") for c in api.calls}
    return marked, texts, calls


async def test_a_fresh_answer_marks_each_message_as_slack_creates_it() -> None:
    marked, texts, _ = await write("첫 문단이에요.\n\n둘째 문단이에요.", resume=[], streaming=False, limit=12)
    assert texts == ["첫 문단이에요.", "둘째 문단이에요."]
    assert [index for index, _ in marked] == [0, 1]


async def test_a_streamed_answer_is_marked_when_the_stream_starts() -> None:
    marked, texts, _ = await write("스트리밍 답이에요.", resume=[])
    assert texts == ["스트리밍 답이에요."] and [index for index, _ in marked] == [0]


async def test_a_resumed_answer_edits_the_message_it_had_started() -> None:
    marked, texts, calls = await write("다시 만든 완전한 답이에요.", resume=["다시 만든 완"])
    assert texts == ["다시 만든 완전한 답이에요."]  # one message, edited in place
    assert marked == []  # nothing new was posted
    assert "chat.update" in calls and "chat.postMessage" not in calls
    assert calls["chat.stopStream"] == calls["chat.update"]  # its stream was ended first


def test_job_targets_carry_no_text_and_come_back_whole() -> None:
    message = SlackMessage(
        "mention", "Ev1", "E1:T1", "T1", "C1", "1.2", "1.0", "W1", "제 번호는 010-1234-5678"
    )
    target = to_message_target(message)
    assert "010-1234-5678" not in str(target)
    assert from_message_target(target, text=message.text) == message
    command = SlashCommand("T1", "D1", "W1", " Reset ", "trig", "https://hooks.slack.com/x")
    again = from_command_target(to_command_target(command))
    assert again.text == "초기화"  # only the command word is kept
    inbound, original = command_inbound(again, bot="default"), command_inbound(command, bot="default")
    assert (inbound.key, inbound.message_id, inbound.text) == (original.key, original.message_id, "초기화")
