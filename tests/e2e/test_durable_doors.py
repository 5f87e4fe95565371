"""Kakao and Teams through two real processes on one Redis: the survivor of a kill delivers once."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.support.botframework import BotConnector, stream_info
from tests.support.openai_server import FakeOpenAI
from tests.support.processes import DariProcess, clean_env, poll
from tests.support.service import CallbackReceiver, redis_prefix

ADAPTERS = Path(__file__).resolve().parents[1] / "adapters"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    async with redis_prefix(redis_url) as name:
        yield name


@pytest.fixture
def env(fake_openai: FakeOpenAI, redis_url: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    fake_openai.answer = lambda messages: f"답: {messages[-1]['content']}"
    return clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        DARI_LLM_MAX_RETRIES="0",
        REDIS_URL=redis_url,
        DARI_REDIS_PREFIX=prefix,
        DARI_DATA_DIR=str(tmp_path),
        DARI_JOB_LEASE="1.5",
        DARI_KAKAO_CALLBACK_DOMAIN="*",
        DARI_KAKAO_BUDGET="2.0",
        DARI_KAKAO_CALLBACK_BUDGET="0.1",
    )


@pytest.fixture
async def pair(
    env: dict[str, str], tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[list[DariProcess]]:
    """Two processes on the same Redis prefix: the one that will die, and the survivor."""
    started = [await DariProcess(env, cwd=tmp_path).start() for _ in range(2)]
    try:
        for process in started:
            await process.wait_until_up(http)
        yield started
    finally:
        for process in started:
            await process.close()


def skill_request(text: str, *, user: str, callback: str | None = None) -> dict[str, Any]:
    path = ADAPTERS / "kakao" / "payloads" / "skill_request_callback.json"
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    body["userRequest"]["utterance"] = text
    body["userRequest"]["user"]["id"] = user
    if callback is None:
        del body["userRequest"]["callbackUrl"]
    else:
        body["userRequest"]["callbackUrl"] = callback
    return body


async def ask(http: aiohttp.ClientSession, process: DariProcess, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(process.url + "/kakao/skill", json=body) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def marked(redis_url: str, prefix: str, name: str) -> None:
    """Wait until a job in flight has recorded ``name`` (what the dying process got out)."""
    redis = Redis.from_url(redis_url)

    async def found() -> bool:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:job:*")]
        return any([await redis.hexists(key, name) for key in keys])

    try:
        await poll(found)
    finally:
        await redis.aclose()


async def drained(redis_url: str, prefix: str) -> None:
    """Wait until no job is left in the queue."""
    redis = Redis.from_url(redis_url)

    async def empty() -> bool:
        return not await redis.xlen(f"{prefix}:jobs")

    try:
        await poll(empty)
    finally:
        await redis.aclose()


async def test_kakao_a_callback_survives_the_process_that_promised_it(
    fake_openai: FakeOpenAI, pair: list[DariProcess], http: aiohttp.ClientSession
) -> None:
    dying, survivor = pair
    fake_openai.response_delay = 60.0
    async with CallbackReceiver() as receiver:
        ack = await ask(
            http,
            dying,
            skill_request("보고서 요약해 주세요", user="u-callback", callback=receiver.url + "/t1"),
        )
        assert ack["useCallback"] is True
        await poll(lambda: len(fake_openai.requests) == 1)
        fake_openai.response_delay = 0.0
        dying.kill()
        (body,) = await receiver.wait_for(1, timeout=30)
        await survivor.stop()
    assert [o["simpleText"]["text"] for o in body["template"]["outputs"]] == ["답: 보고서 요약해 주세요"]
    assert len(receiver.bodies) == 1
    assert survivor.logged("taking over a job from a process that stopped")


async def test_kakao_a_pending_answer_survives_and_comes_with_the_next_message(
    fake_openai: FakeOpenAI, pair: list[DariProcess], http: aiohttp.ClientSession, redis_url: str, prefix: str
) -> None:
    dying, survivor = pair
    fake_openai.response_delay = 60.0
    first = await ask(http, dying, skill_request("느린 질문", user="u-pending"))
    assert "잠시 후" in first["template"]["outputs"][0]["simpleText"]["text"]
    await poll(lambda: len(fake_openai.requests) == 1)
    fake_openai.response_delay = 0.0
    dying.kill()
    await survivor.wait_log(lambda e: "taking over" in str(e.get("msg")), timeout=30)
    await drained(redis_url, prefix)  # the survivor kept the answer for the user's next message
    second = await ask(http, survivor, skill_request("다음 질문", user="u-pending"))
    texts = [o["simpleText"]["text"] for o in second["template"]["outputs"]]
    assert "답: 느린 질문" in texts[0] and texts[-1] == "답: 다음 질문"


async def test_teams_a_taken_over_stream_is_closed_by_the_survivor_with_one_message(
    fake_openai: FakeOpenAI, pair: list[DariProcess], http: aiohttp.ClientSession, redis_url: str, prefix: str
) -> None:
    dying, survivor = pair
    fake_openai.response_delay = 60.0
    async with BotConnector() as connector:
        activity: dict[str, Any] = json.loads(
            (ADAPTERS / "teams" / "payloads" / "personal_message.json").read_text()
        )
        activity = copy.deepcopy(activity)
        activity.update(serviceUrl=connector.service_url, text="회의록 요약해 줘", id=f"{time.time_ns()}")
        async with http.post(dying.url + "/api/messages", json=activity) as response:
            assert response.status == 200
        await marked(redis_url, prefix, "teams:stream")  # the stream was opened, then the model hung
        fake_openai.response_delay = 0.0
        dying.kill()
        (final,) = await connector.wait_for(1, timeout=30)
        await survivor.stop()
    (start,) = [
        r for r in connector.received if (stream_info(r.body) or {}).get("streamType") == "informative"
    ]
    assert final.text == "답: 회의록 요약해 줘"
    assert stream_info(final.body) == {"type": "streaminfo", "streamType": "final", "streamId": "activity-1"}
    assert len(connector.messages) == 1 and final.reply_to == activity["id"]
    assert start.body["text"]  # the dying process's informative update, the one the final closed
