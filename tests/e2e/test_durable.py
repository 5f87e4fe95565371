"""Two real `dari serve` processes on one Redis: a process killed mid-answer loses nothing.

The LLM (FakeOpenAI) and the Slack Web API stand-in run in the test process; the service runs
as separate processes sharing one Redis prefix, with a short job lease so that a takeover
happens within a second or two.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.support.openai_server import FakeOpenAI
from tests.support.processes import DariProcess, clean_env, poll
from tests.support.service import redis_prefix
from tests.support.slack_api import SlackAPI, slack_api

PAYLOADS = Path(__file__).resolve().parents[1] / "adapters" / "slack" / "payloads"
SECRET = "durable-signing-secret-0123456789"
LEASE = "1.5"
CHANNEL = "C111"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api() -> AsyncIterator[SlackAPI]:
    async with slack_api() as stand_in:
        yield stand_in


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    async with redis_prefix(redis_url) as name:
        yield name


@pytest.fixture
def env(
    fake_openai: FakeOpenAI, api: SlackAPI, redis_url: str, prefix: str, tmp_path: Path
) -> dict[str, str]:
    fake_openai.answer = lambda messages: f"답: {question(messages[-1])}"
    return clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        DARI_LLM_MAX_RETRIES="0",
        DARI_LLM_TIMEOUT="60",
        REDIS_URL=redis_url,
        DARI_REDIS_PREFIX=prefix,
        DARI_DATA_DIR=str(tmp_path),
        DARI_JOB_LEASE=LEASE,
        SLACK_BOT_TOKEN="xoxb-durable",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=api.url,
        DARI_SLACK_STREAMING="true",
    )


@pytest.fixture
async def processes(env: dict[str, str], tmp_path: Path) -> AsyncIterator[list[DariProcess]]:
    started: list[DariProcess] = []
    yield started
    for process in started:
        await process.close()


async def serve(
    processes: list[DariProcess], env: dict[str, str], tmp_path: Path, http: aiohttp.ClientSession
) -> DariProcess:
    process = await DariProcess(env, cwd=tmp_path).start()
    processes.append(process)
    await process.wait_until_up(http)
    return process


def mention(text: str, *, ts: str, thread: str = "") -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / "slack_event_app_mention_bolt.json").read_text("utf-8"))
    body = copy.deepcopy(body)
    body["event_id"] = f"Ev{time.time_ns()}"
    event = body["event"]
    event.update(text=f"<@W111> {text}", ts=ts, event_ts=ts, channel=CHANNEL)
    if thread:
        event["thread_ts"] = thread
    else:
        event.pop("thread_ts", None)
    return body


async def post(http: aiohttp.ClientSession, process: DariProcess, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest,
    }
    async with http.post(process.url + "/slack/events", data=raw, headers=headers) as response:
        assert response.status == 200, await response.text()


async def cleared(redis_url: str, prefix: str) -> None:
    """Wait until every job is answered and forgotten (a job is cleared just after its answer)."""
    redis = Redis.from_url(redis_url)

    async def empty() -> bool:
        return not await redis.xlen(f"{prefix}:jobs") and not await redis.keys(f"{prefix}:job:*")

    try:
        await poll(empty, timeout=10)
    finally:
        await redis.aclose()


def texts(api: SlackAPI, thread: str) -> list[str]:
    return [message.text for message in api.thread(CHANNEL, thread)]


def question(message: dict[str, Any]) -> str:
    """What was asked, without the speaker's name a group prompt puts in front ("[W222] ...")."""
    return re.sub(r"^\[[^\]]*\] ", "", str(message["content"]))


def asked(fake_openai: FakeOpenAI) -> list[str]:
    return [question(request["messages"][-1]) for request in fake_openai.requests]


async def test_a_process_killed_mid_answer_leaves_it_to_the_other_in_order_and_once(
    fake_openai: FakeOpenAI,
    api: SlackAPI,
    env: dict[str, str],
    processes: list[DariProcess],
    tmp_path: Path,
    http: aiohttp.ClientSession,
    redis_url: str,
    prefix: str,
) -> None:
    first, second = [await serve(processes, env, tmp_path, http) for _ in range(2)]
    thread = f"{time.time():.6f}"
    fake_openai.response_delay = 60.0  # the first answer hangs in the first process
    await post(http, first, mention("첫 질문", ts=thread, thread=thread))
    await poll(lambda: len(fake_openai.requests) == 1)
    # The next message of the same thread reaches the other process; it must wait its turn.
    await post(http, second, mention("두 번째 질문", ts=f"{float(thread) + 1:.6f}", thread=thread))
    fake_openai.response_delay = 0.0
    first.kill()
    assert await first.wait() == -9

    await api.wait_for("chat.stopStream", 2, timeout=30)
    assert texts(api, thread) == ["답: 첫 질문", "답: 두 번째 질문"]  # one answer each, in order
    assert asked(fake_openai) == ["첫 질문", "첫 질문", "두 번째 질문"]  # the killed call, again, next
    second_prompt = json.dumps(fake_openai.requests[-1]["messages"], ensure_ascii=False)
    assert "답: 첫 질문" in second_prompt  # answered after the first, with it in its history
    [takeover] = second.logged("taking over a job from a process that stopped")
    assert takeover["origin"].split(":")[1] == str(first.pid)
    await cleared(redis_url, prefix)

    # A restart keeps all history on Redis: a new process answers the thread's third message.
    assert await second.stop() == 0
    third = await serve(processes, env, tmp_path, http)
    await post(http, third, mention("세 번째 질문", ts=f"{float(thread) + 2:.6f}", thread=thread))
    await api.wait_for("chat.stopStream", 3, timeout=30)
    assert texts(api, thread) == ["답: 첫 질문", "답: 두 번째 질문", "답: 세 번째 질문"]
    history = json.dumps(fake_openai.requests[-1]["messages"], ensure_ascii=False)
    assert "첫 질문" in history and "답: 두 번째 질문" in history


async def test_a_takeover_mid_stream_finishes_the_same_message(
    fake_openai: FakeOpenAI,
    api: SlackAPI,
    env: dict[str, str],
    processes: list[DariProcess],
    tmp_path: Path,
    http: aiohttp.ClientSession,
    redis_url: str,
    prefix: str,
) -> None:
    first, second = [await serve(processes, env, tmp_path, http) for _ in range(2)]
    fake_openai.answer = "연차는 입사 1년 뒤부터 15일이고, 2년마다 하루씩 늘어나요."
    fake_openai.chunk_chars = 8
    fake_openai.chunk_delay = 60.0  # the first words reach Slack, then the model hangs
    thread = f"{time.time():.6f}"
    await post(http, first, mention("연차는 며칠이에요?", ts=thread, thread=thread))
    redis = Redis.from_url(redis_url)
    try:

        async def marked() -> bool:
            keys = [key async for key in redis.scan_iter(match=f"{prefix}:job:*")]
            return bool(keys) and await redis.hexists(keys[0], "slack:message:0")

        await poll(marked)  # the first process wrote to Slack and marked it
    finally:
        await redis.aclose()
    fake_openai.chunk_delay = 0.0
    first.kill()

    answer = "연차는 입사 1년 뒤부터 15일이고, 2년마다 하루씩 늘어나요."
    await poll(lambda: texts(api, thread) == [answer], timeout=30)
    await second.stop()  # the answer is whole: nothing more may be written
    [message] = api.thread(CHANNEL, thread)
    assert message.edits >= 1 and not message.streaming
    assert len(api.called("chat.startStream")) == 1 and not api.called("chat.postMessage")
    assert second.logged("taking over a job from a process that stopped")


async def test_sigterm_finishes_the_answer_in_flight_and_exits_cleanly(
    fake_openai: FakeOpenAI,
    api: SlackAPI,
    env: dict[str, str],
    processes: list[DariProcess],
    tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    process = await serve(processes, env, tmp_path, http)
    fake_openai.response_delay = 2.0
    thread = f"{time.time():.6f}"
    await post(http, process, mention("퇴근 전에 답해 주세요", ts=thread, thread=thread))
    await poll(lambda: len(fake_openai.requests) == 1)
    assert await process.stop() == 0
    assert texts(api, thread) == ["답: 퇴근 전에 답해 주세요"]
    assert not process.logged("unfinished at shutdown")
