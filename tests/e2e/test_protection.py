"""Limits, the circuit breaker and a Redis outage through the whole service over HTTP, with the
real openai client against FakeOpenAI and, for the outage, a private redis-server that dies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.e2e.test_kakao import ask, settings_for, skill_request, texts_of
from tests.support.openai_server import FakeOpenAI
from tests.support.redis_server import RedisServer, free_port
from tests.support.service import Service, redis_prefix, run_service


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def chat(
    http: aiohttp.ClientSession, service: Service, text: str, session: str = "session-0001"
) -> str:
    """One console turn; the answer's text (the SSE "done" event)."""
    body = {"bot": "default", "text": text, "session": session}
    async with http.post(f"{service.url}/console/api/chat", json=body) as response:
        assert response.status == 200, await response.text()
        raw = await response.text()
    events = [block.split("\n", 1) for block in raw.split("\n\n") if block.strip()]
    done = [json.loads(data.removeprefix("data: ")) for name, data in events if name == "event: done"]
    assert done, raw
    text_: str = done[0]["text"]
    return text_


async def readiness(http: aiohttp.ClientSession, service: Service) -> tuple[int, dict[str, Any]]:
    async with http.get(service.url + "/readyz") as response:
        return response.status, await response.json()


async def metric(http: aiohttp.ClientSession, service: Service, line_start: str) -> float:
    async with http.get(service.url + "/metrics") as response:
        text = await response.text()
    (line,) = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(line.rsplit(" ", 1)[1])


async def test_a_user_sending_too_fast_is_told_when_to_try_again(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession, redis_url: str
) -> None:
    fake_openai.answer = "네, 정리해 드릴게요."
    async with redis_prefix(redis_url) as prefix:
        settings = settings_for(
            fake_openai,
            tmp_path,
            redis_url=redis_url,
            redis_prefix=prefix,
            rate_user="2/24",
            rate_tenant="off",
        )
        async with run_service(settings) as service:
            answers = [texts_of(await ask(http, service, skill_request(f"질문 {i}")))[0] for i in range(3)]
            other = texts_of(await ask(http, service, skill_request("안녕하세요", user="user-b")))[0]
            refused = await metric(http, service, 'dari_rate_limited_total{scope="user"}')
            client = Redis.from_url(redis_url)
            try:
                buckets = [k async for k in client.scan_iter(match=f"{prefix}:rate:*")]
            finally:
                await client.aclose()
    assert answers[:2] == ["네, 정리해 드릴게요."] * 2
    assert answers[2].startswith("메시지를 너무 빨리 보내고 있어요.")
    assert answers[2].endswith("초 뒤에 다시 보내 주세요.")
    seconds = int(answers[2].split(". ")[1].removesuffix("초 뒤에 다시 보내 주세요."))
    assert 11 <= seconds <= 12  # 2 per 24 s: a token every 12 s
    assert other == "네, 정리해 드릴게요."
    assert len(fake_openai.requests) == 3 and refused == 1
    assert len(buckets) == 2  # in Redis, where every process finds them


async def test_while_the_llm_is_down_the_breaker_answers_at_once_and_readyz_shows_it(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.fail(503, times=2)
    settings = settings_for(fake_openai, tmp_path, llm_breaker_threshold=2, llm_breaker_cooldown=600)
    async with run_service(settings) as service:
        answers = [await chat(http, service, f"질문 {i}") for i in range(4)]
        status, ready = await readiness(http, service)
        open_state = await metric(http, service, 'dari_llm_circuit_state{state="open"}')
    assert all(a.startswith("죄송해요, 지금은 답변을 드리기 어려워요") for a in answers)
    assert len(fake_openai.requests) == 2  # the last two never reached the model
    assert status == 503 and ready["status"] == "not ready"
    assert ready["checks"]["llm"]["breaker"] == "open" and ready["checks"]["llm"]["ok"] is False
    assert "circuit open" in ready["checks"]["llm"]["detail"]
    assert open_state == 1


async def until_ready(http: aiohttp.ClientSession, service: Service) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            status, body = await readiness(http, service)
            if status == 200 and body["status"] == "ready":
                return body
            await asyncio.sleep(0.05)  # polling a condition: has the store recovered


async def test_the_service_outlives_redis_and_recovers_by_itself(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake_openai.answer = "네, 알겠어요."
    async with RedisServer() as redis_server:
        settings = settings_for(fake_openai, tmp_path, redis_url=redis_server.url)
        async with run_service(settings) as service:
            assert await chat(http, service, "첫 질문") == "네, 알겠어요."
            await redis_server.stop()
            during = [await chat(http, service, f"장애 중 질문 {i}") for i in range(3)]
            kakao = texts_of(await ask(http, service, skill_request("카카오에서도 되나요?")))
            status, ready = await readiness(http, service)
            degraded = await metric(http, service, "dari_store_degraded")
            await redis_server.start()
            after = await until_ready(http, service)
            assert await chat(http, service, "복구 후 질문") == "네, 알겠어요."
            history = [m["content"] for m in fake_openai.requests[-1]["messages"]]
    assert during == ["네, 알겠어요."] * 3 and kakao == ["네, 알겠어요."]
    assert status == 200 and ready["status"] == "degraded"
    assert (
        ready["checks"]["store"]["degraded"] is True and "unreachable" in ready["checks"]["store"]["detail"]
    )
    assert degraded == 1
    assert after["checks"]["store"] == {"ok": True, "detail": "redis", "degraded": False}
    # Turns said during the outage were written back to the new, empty Redis.
    assert "장애 중 질문 2" in history and "첫 질문" not in history
    # Each transition is logged once, not once per message.
    ours = [
        (r.name, r.msg) for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("core")
    ]
    assert len(ours) == len(set(ours)), ours
    assert (
        "core.memory.resilient",
        "%s is back after %.0f s; what was kept meanwhile is written back%s",
    ) in ours


async def test_an_unreachable_llm_makes_the_service_not_ready_but_users_get_an_apology(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings = settings_for(None, tmp_path, openai_base_url=nowhere)
    async with run_service(settings) as service:
        answer = await chat(http, service, "안녕하세요")
        status, ready = await readiness(http, service)
    assert answer.startswith("죄송해요")
    assert status == 503 and ready["status"] == "not ready"
    assert ready["checks"]["llm"]["detail"].startswith("unreachable")
    assert ready["checks"]["llm"]["breaker"] == "closed"  # one failure is not an outage yet


async def test_a_service_started_while_redis_is_down_answers_and_recovers(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    redis_server = RedisServer()  # not started yet: Redis is down when dari starts
    try:
        async with run_service(settings_for(fake_openai, tmp_path, redis_url=redis_server.url)) as service:
            assert await chat(http, service, "안녕하세요") == fake_openai.answer
            status, ready = await readiness(http, service)
            assert status == 200 and ready["status"] == "degraded"
            await redis_server.start()
            await until_ready(http, service)
    finally:
        await redis_server.stop()
