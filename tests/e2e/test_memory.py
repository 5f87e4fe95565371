"""Personal memory and erasure end to end: the Kakao door, the real openai client, a real store,
and the operator's export and verified erasure on the same store."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from adapters.admin import export_user, forget_user
from adapters.settings import Settings
from tests.e2e.test_kakao import ask, settings_for, skill_request, texts_of
from tests.support.openai_server import FakeOpenAI
from tests.support.redis import FakeClock, RedisProbe, SqliteProbe
from tests.support.service import redis_prefix, run_service

TENANT = "5ae9b76d7409b11ec845b746!"  # the bot id in the Kakao payloads: the tenant of their users


async def everything_stored(settings: Settings) -> str:
    """Every key and value, or every row, the configured store holds, as text."""
    if settings.redis_url:
        client = Redis.from_url(settings.redis_url)
        try:
            return await RedisProbe(client=client, prefix=settings.redis_prefix).dump()
        finally:
            await client.aclose()
    return await SqliteProbe(path=settings.data_dir / "dari.sqlite3", clock=FakeClock()).dump()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def sent(fake_openai: FakeOpenAI) -> str:
    return json.dumps(fake_openai.requests[-1]["messages"], ensure_ascii=False)


@pytest.fixture(params=["embedded", "redis"])
async def settings(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI, tmp_path: Path, redis_url: str
) -> AsyncIterator[Settings]:
    if request.param == "embedded":
        yield settings_for(fake_openai, tmp_path)
        return
    # A prefix of its own: the dump below must see this test's keys only.
    async with redis_prefix(redis_url) as prefix:
        yield settings_for(fake_openai, tmp_path, redis_url=redis_url, redis_prefix=prefix)


async def test_remember_then_forget_through_the_kakao_door(
    settings: Settings, fake_openai: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    user = f"kakao-user-{uuid.uuid4().hex}"
    async with run_service(settings) as service:
        remembered = texts_of(
            await ask(http, service, skill_request("기억해 줘: 저는 재무팀이에요", user=user))
        )
        assert "기억했어요: 저는 재무팀이에요" in remembered[0]
        assert fake_openai.requests == []  # a command costs no LLM call
        await ask(
            http,
            service,
            skill_request("제 암호명은 오렌지펭귄이에요. 이번 주 할 일 정리해 주세요", user=user),
        )
        assert "저는 재무팀이에요" in fake_openai.requests[-1]["messages"][0]["content"]
        listed = texts_of(await ask(http, service, skill_request("기억 목록", user=user)))
        assert "1. 저는 재무팀이에요" in listed[0]
        await ask(http, service, skill_request("안녕하세요", user=f"other-{user}"))
        assert "재무팀" not in sent(fake_openai) and "오렌지펭귄" not in sent(fake_openai)

        forgot = texts_of(await ask(http, service, skill_request("잊어줘", user=user)))
        assert "모두 지웠어요" in forgot[0]
        await ask(http, service, skill_request("제 부서와 암호명이 뭐였죠?", user=user))
        assert "재무팀" not in sent(fake_openai) and "오렌지펭귄" not in sent(fake_openai)
        assert (
            "아직 기억하고 있는 내용이 없어요"
            in texts_of(await ask(http, service, skill_request("기억 목록", user=user)))[0]
        )
    stored = await everything_stored(settings)
    assert "오렌지펭귄" not in stored and "재무팀" not in stored
    # Clean up what the last question left, through the operator's tool.
    for who in (user, f"other-{user}"):
        await forget_user(settings, platform="kakao", tenant=TENANT, user_id=who)


async def test_an_operator_exports_and_erases_a_user(
    settings: Settings, fake_openai: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    fake_openai.answer = "네, 일정표 초안을 만들어 드릴게요."
    user = f"kakao-user-{uuid.uuid4().hex}"
    async with run_service(settings) as service:
        await ask(http, service, skill_request("기억해 줘: 제 연락처는 010-1234-5678이에요", user=user))
        await ask(http, service, skill_request("출장 일정표 초안 부탁해요, 암호명 청개구리", user=user))

    data = await export_user(settings, platform="kakao", tenant=TENANT, user_id=user)
    exported = json.dumps(data, ensure_ascii=False)  # JSON-serialisable as is
    assert data["subject"] == {"platform": "kakao", "tenant": TENANT, "user_id": user, "bot": None}
    [conversation] = data["conversations"]
    assert conversation["platform"] == "kakao" and conversation["conversation"] == user
    assert [t["role"] for t in conversation["turns"]] == ["user", "assistant"]
    assert "청개구리" in conversation["turns"][0]["text"]
    assert [f["text"] for f in data["facts"]] == ["제 연락처는 [전화번호]이에요"]
    assert "010-1234-5678" not in exported  # stored masked, exported masked
    assert (await export_user(settings, platform="kakao", tenant=TENANT, user_id=user, bot="formal"))[
        "facts"
    ] == []

    assert await forget_user(settings, platform="kakao", tenant=TENANT, user_id=user) == 3  # 2 turns, 1 fact
    after = await export_user(settings, platform="kakao", tenant=TENANT, user_id=user)
    assert after["conversations"] == [] and after["facts"] == []
    stored = await everything_stored(settings)
    assert user not in stored and "청개구리" not in stored and "[전화번호]" not in stored
    assert await forget_user(settings, platform="kakao", tenant=TENANT, user_id=user) == 0
