"""An answer written again after its process died: the same Slack messages are edited, none added."""

from __future__ import annotations

import aiohttp

from adapters.slack.answer import DoorOptions
from adapters.slack.client import web_client
from adapters.slack.deliver import SlackDeliverer
from adapters.slack.jobs import (
    command_inbound,
    from_command_target,
    from_message_target,
    to_command_target,
    to_message_target,
)
from adapters.slack.pacing import ChannelPacer
from adapters.slack.translate import SlackMessage, SlashCommand, to_inbound
from adapters.slack.writer import ReplyWriter, Target
from adapters.worker import Delivery
from core.engine import Engine
from core.jobs import Claim, new_job
from core.jobs_local import LocalQueue
from tests.adapters.slack.conftest import PERSONA
from tests.support.fakes import InMemoryStore, ScriptedLLM
from tests.support.slack_api import Message, SlackAPI, slack_api

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


def thread_of(api: SlackAPI) -> list[Message]:
    return api.thread("C111", TARGET.thread_ts)


async def test_a_takeover_finds_a_message_the_dead_attempt_created_but_never_marked() -> None:
    # Found by the soak: a process killed between Slack creating the streamed message and the
    # mark left that message streaming, and the takeover posted the answer again beside it.
    message = SlackMessage(
        "mention", "Ev1", "T111", "T111", "C111", "1700000000.000200", TARGET.thread_ts, "W222", "질문"
    )
    engine = Engine(
        store=InMemoryStore(),
        llm=ScriptedLLM("다시 쓴 답이에요."),
        personas={"default": PERSONA},
        default_model="m",
    )
    async with slack_api() as api, aiohttp.ClientSession() as session:
        client = web_client(token="x", base_url=api.url, session=session)
        # The answer to the question before, finished after this question came (it waited its turn).
        await client.chat_postMessage(channel="C111", thread_ts=TARGET.thread_ts, text="앞 질문의 답")
        inbound = to_inbound(message, bot="default")
        job = new_job(door="slack", inbound=inbound, target=to_message_target(message), origin="dead")
        first = await LocalQueue().put(job)
        assert first is not None
        # Marked before the stream began (its ts mark never came), after the answer before it.
        marks = {"slack:started": f"{float(thread_of(api)[0].ts) + 0.000001:.6f}"}
        started = await client.chat_startStream(
            channel="C111", thread_ts=TARGET.thread_ts, markdown_text="다시"
        )
        claim = Claim(job=first.job, attempt=2, marks=marks)
        deliverer = SlackDeliverer(
            engine=engine, client=client, pacer=ChannelPacer(interval=0.0), options=DoorOptions()
        )
        await deliverer.deliver(Delivery(claim=claim, queue=LocalQueue(), marks=dict(marks)))
        thread = api.thread("C111", TARGET.thread_ts)
    assert [m.text for m in thread] == ["앞 질문의 답", "다시 쓴 답이에요."]
    assert thread[1].ts == started["ts"] and not thread[1].streaming
