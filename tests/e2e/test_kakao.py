"""The KakaoTalk door end to end: real HTTP, the real openai client, a real store."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.runtime import ENGINE, TASKS
from adapters.settings import Settings
from core.types import ConversationKey
from tests.support.openai_server import FakeOpenAI
from tests.support.service import CallbackReceiver, IsolatedSettings, Service, redis_prefix, run_service

PAYLOADS = Path(__file__).resolve().parent.parent / "adapters" / "kakao" / "payloads"
# The conversation of ``skill_request``'s default user with the payload's Kakao bot.
KAKAO_KEY = ConversationKey(
    platform="kakao", tenant="5ae9b76d7409b11ec845b746!", conversation="user-a", bot="default"
)


def skill_request(text: str, *, user: str = "user-a", callback: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / "skill_request_callback.json").read_text(encoding="utf-8"))
    body["userRequest"]["utterance"] = text
    body["userRequest"]["user"]["id"] = user
    if callback is None:
        del body["userRequest"]["callbackUrl"]
    else:
        body["userRequest"]["callbackUrl"] = callback
    return body


def settings_for(llm: FakeOpenAI | None, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "kakao_callback_domain": "*",
        "llm_max_retries": 0,
        "llm_timeout": 20.0,
    }
    if llm is not None:
        values.update(openai_base_url=llm.base_url, openai_api_key="sk-test-secret-key-0000")
    values.update(overrides)
    return IsolatedSettings(**values)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def ask(http: aiohttp.ClientSession, service: Service, body: Any, path: str = "/kakao/skill") -> Any:
    async with http.post(service.url + path, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def texts_of(answer: dict[str, Any]) -> list[str]:
    assert answer["version"] == "2.0"
    outputs = answer["template"]["outputs"]
    assert 1 <= len(outputs) <= 3
    return [o["simpleText"]["text"] for o in outputs]


async def test_a_message_gets_a_korean_answer_inline(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.answer = "**안녕하세요!** 무엇을 도와드릴까요?"
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        started = time.monotonic()
        answer = await ask(http, service, skill_request("안녕하세요"))
        assert time.monotonic() - started < 4.5
    assert texts_of(answer) == ["안녕하세요! 무엇을 도와드릴까요?"]  # Markdown made plain
    assert 1 <= len(answer["template"]["quickReplies"]) <= 10
    (request,) = fake_openai.requests
    system = request["messages"][0]
    assert system["role"] == "system" and "한국 표준시" in system["content"]
    assert request["messages"][-1] == {"role": "user", "content": "안녕하세요"}


async def test_the_second_turn_carries_the_first_and_other_users_do_not_see_it(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        await ask(http, service, skill_request("제 프로젝트 이름은 은하수예요", user="user-a"))
        await ask(http, service, skill_request("제 프로젝트 이름이 뭐였죠?", user="user-a"))
        await ask(http, service, skill_request("안녕하세요", user="user-b"))
    _, second, other = (json.dumps(r["messages"], ensure_ascii=False) for r in fake_openai.requests)
    assert "은하수" in second
    assert "은하수" not in other


@pytest.mark.parametrize("store", ["embedded", "redis"])
async def test_history_survives_a_restart(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession, redis_url: str, store: str
) -> None:
    async with redis_prefix(redis_url) as prefix:
        extra = {"redis_url": redis_url, "redis_prefix": prefix} if store == "redis" else {}
        async with run_service(settings_for(fake_openai, tmp_path, **extra)) as service:
            await ask(http, service, skill_request("회의실 예약 번호는 A-17이에요"))
        async with run_service(settings_for(fake_openai, tmp_path, **extra)) as service:
            await ask(http, service, skill_request("예약 번호 다시 알려 주세요"))
    assert "A-17" in json.dumps(fake_openai.requests[-1]["messages"], ensure_ascii=False)


async def test_personal_identifiers_never_reach_the_llm_or_the_logs(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    text = "제 주민번호는 900101-1234568이고 연락처는 010-1234-5678이에요. 카드는 4111 1111 1111 1111이에요."
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        await ask(http, service, skill_request(text))
    sent = json.dumps(fake_openai.requests, ensure_ascii=False)
    for identifier in ("900101-1234568", "1234568", "010-1234-5678", "5678", "4111 1111 1111 1111"):
        # Not part of a longer number: a log line's timestamp (1795966092.6235678) is no leak.
        alone = re.compile(rf"(?<!\d){re.escape(identifier)}(?!\d)")
        assert not alone.search(sent)
        assert not alone.search(caplog.text)
    assert "[주민등록번호]" in sent and "[전화번호]" in sent and "[카드번호]" in sent


async def test_a_slow_answer_with_a_callback_url_is_acked_at_once_and_posted_once(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.response_delay = 8.0  # an 8 s LLM, well past Kakao's 5 s
    fake_openai.answer = "천천히 생각한 답이에요."
    async with CallbackReceiver() as receiver, run_service(settings_for(fake_openai, tmp_path)) as service:
        started = time.monotonic()
        ack = await ask(http, service, skill_request("어려운 질문", callback=receiver.url + "/tok1"))
        assert time.monotonic() - started < 1.0
        assert ack["version"] == "2.0" and ack["useCallback"] is True
        assert "template" not in ack and ack["data"]["text"]
        (body,) = await receiver.wait_for(1, timeout=20)
        await service.app[TASKS].join()
    assert texts_of(body) == ["천천히 생각한 답이에요."]
    assert len(receiver.bodies) == 1
    assert len(fake_openai.requests) == 1


async def test_a_failed_callback_post_is_retried_within_the_minute(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.response_delay = 0.5
    async with (
        CallbackReceiver() as receiver,
        run_service(settings_for(fake_openai, tmp_path, kakao_callback_budget=0.1)) as service,
    ):
        receiver.fail_next = [503]
        await ask(http, service, skill_request("질문", callback=receiver.url + "/tok2"))
        await receiver.wait_for(1)
        await service.app[TASKS].join()
    assert len(receiver.bodies) == 1 and receiver.fail_next == []


async def test_a_refused_callback_is_not_posted_again(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.response_delay = 0.5
    fake_openai.answer = "첫 답이에요."
    async with (
        CallbackReceiver() as receiver,
        run_service(settings_for(fake_openai, tmp_path, kakao_callback_budget=0.1)) as service,
    ):
        receiver.fail_next = [400, 400]
        await ask(http, service, skill_request("질문", callback=receiver.url + "/tok3"))
        await service.app[TASKS].join()
        assert receiver.fail_next == [400]  # one attempt only
        assert receiver.bodies == []
        # Not lost: it comes first with the user's next message.
        fake_openai.response_delay = 0.0
        fake_openai.answer = "다음 답이에요."
        later = await ask(http, service, skill_request("다음 질문"))
    first, *_, last = texts_of(later)
    assert first == "앞서 물어보신 내용의 답변이에요.\n\n첫 답이에요." and last == "다음 답이에요."


async def test_callbacks_go_only_to_kakao_unless_allowed(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.response_delay = 0.6
    async with (
        CallbackReceiver() as receiver,
        run_service(
            settings_for(fake_openai, tmp_path, kakao_callback_domain="kakao.com", kakao_budget=0.2)
        ) as service,
    ):
        answer = await ask(http, service, skill_request("질문", callback=receiver.url + "/tok4"))
        await service.app[TASKS].join()
    assert "useCallback" not in answer  # a forged callback URL is ignored
    assert receiver.bodies == []


async def test_without_a_callback_a_slow_answer_is_kept_for_the_next_message(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.answer = lambda messages: f"답변: {messages[-1]['content']}"
    fake_openai.response_delay = 1.0
    async with run_service(settings_for(fake_openai, tmp_path, kakao_budget=0.3)) as service:
        started = time.monotonic()
        first = await ask(http, service, skill_request("첫 질문"))
        assert time.monotonic() - started < 1.0
        assert "잠시 후" in texts_of(first)[0]
        await service.app[TASKS].join()
        fake_openai.response_delay = 0.0
        second = await ask(http, service, skill_request("두 번째 질문"))
    texts = texts_of(second)
    assert "답변: 첫 질문" in texts[0]
    assert texts[-1] == "답변: 두 번째 질문"


async def test_long_answers_fit_kakao_limits(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.answer = "\n\n".join(f"{i}번째 문단이에요. " * 40 for i in range(12))
    fake_openai.chunk_chars = 500
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        answer = await ask(http, service, skill_request("길게 설명해 주세요"))
    texts = texts_of(answer)
    assert len(texts) == 3
    assert all(0 < len(t) <= 1000 for t in texts)


async def test_the_builder_test_panel_is_answered(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    body = json.loads((PAYLOADS / "skill_request_builder_bot_test.json").read_text(encoding="utf-8"))
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        answer = await ask(http, service, body)
    assert texts_of(answer) == [fake_openai.answer]


async def test_commands_work_in_korean_and_english(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        await ask(http, service, skill_request("비밀 프로젝트는 은하수예요"))
        reset = texts_of(await ask(http, service, skill_request("초기화")))
        await ask(http, service, skill_request("아까 말한 프로젝트가 뭐죠?"))
        help_en = texts_of(await ask(http, service, skill_request("/help")))
        help_ko = texts_of(await ask(http, service, skill_request("도움말")))
    assert "초기화했어요" in reset[0]
    assert "은하수" not in json.dumps(fake_openai.requests[-1], ensure_ascii=False)
    assert "Commands" in help_en[0] and "명령어" in help_ko[0]
    assert len(fake_openai.requests) == 2  # commands cost no LLM call


async def test_forget_erases_what_the_user_said(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        await ask(http, service, skill_request("제 사번은 K-2041이에요"))
        forgot = texts_of(await ask(http, service, skill_request("잊어줘")))
        await ask(http, service, skill_request("제 사번이 뭐였죠?"))
    assert "지웠어요" in forgot[0]
    assert "K-2041" not in json.dumps(fake_openai.requests[-1], ensure_ascii=False)


async def test_llm_failure_gets_a_polite_korean_apology(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.fail(500, times=5)
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        answer = await ask(http, service, skill_request("질문이 있어요"))
    assert texts_of(answer)[0].startswith("죄송해요")


async def test_without_an_llm_the_service_starts_and_says_so(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with run_service(settings_for(None, tmp_path)) as service:
        answer = await ask(http, service, skill_request("안녕하세요"))
        async with http.get(service.url + "/readyz") as response:
            assert response.status == 503
            ready = await response.json()
        async with http.get(service.url + "/healthz") as response:
            assert response.status == 200
    assert "AI 모델이 연결되지 않아" in texts_of(answer)[0]
    assert ready["checks"]["llm"]["ok"] is False and "OPENAI_API_KEY" in ready["checks"]["llm"]["detail"]


async def test_the_shared_secret_is_required_when_set(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "kakao-secret-7f3a9c"
    async with run_service(settings_for(fake_openai, tmp_path, kakao_skill_secret=secret)) as service:
        async with http.post(service.url + "/kakao/skill", json=skill_request("안녕")) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthorized"
        async with http.post(
            service.url + "/kakao/skill?secret=wrong", json=skill_request("안녕")
        ) as response:
            assert response.status == 401
        await ask(http, service, skill_request("안녕"), path=f"/kakao/skill?secret={secret}")
        async with http.post(
            service.url + "/kakao/skill", json=skill_request("안녕"), headers={"X-Dari-Skill-Secret": secret}
        ) as response:
            assert response.status == 200
    assert secret not in caplog.text


BAD_BODIES: list[tuple[bytes, int]] = [
    (b"not json", 400),
    (b"\xff\xfe\xfa", 400),
    (b"[1, 2, 3]", 400),
    (b"{}", 400),
    (b'{"userRequest": {"utterance": "hi", "user": {"id": 7}}}', 400),
    (b'{"userRequest": {"utterance": null, "user": {"id": "u"}}}', 400),
    (b'{"userRequest": "nope"}', 400),
    (b"x" * 400_000, 413),
]


async def test_malformed_requests_get_a_json_4xx_and_the_service_stays_healthy(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        for body, status in BAD_BODIES:
            async with http.post(
                service.url + "/kakao/skill", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == status, body[:40]
                error = await response.json()
                assert set(error["error"]) == {"code", "message"}
                assert "Traceback" not in json.dumps(error)
        async with http.post(service.url + "/kakao/skill/nobot", json=skill_request("안녕")) as response:
            assert response.status == 404
        async with http.get(service.url + "/healthz") as response:
            assert response.status == 200
        answer = await ask(http, service, skill_request("그래도 답해 주세요"))
    assert texts_of(answer) == [fake_openai.answer]
    assert fake_openai.requests and len(fake_openai.requests) == 1


async def test_one_conversation_is_answered_in_order_while_others_run_concurrently(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.answer = lambda messages: f"답: {messages[-1]['content']}"
    fake_openai.response_delay = 0.3
    async with run_service(settings_for(fake_openai, tmp_path)) as service:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(ask(http, service, skill_request(f"질문 {i}", user=f"user-{i}")) for i in range(5))
        )
        elapsed = time.monotonic() - started
    assert [texts_of(a)[0] for a in answers] == [f"답: 질문 {i}" for i in range(5)]
    assert elapsed < 1.2  # five conversations in parallel, not one after another (5 x 0.3 s)


async def test_an_answer_finishing_while_the_next_message_waits_comes_with_it(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    fake_openai.answer = lambda messages: f"답변: {messages[-1]['content']}"
    fake_openai.response_delay = 1.5
    async with run_service(settings_for(fake_openai, tmp_path, kakao_budget=1.0)) as service:
        first = await ask(http, service, skill_request("느린 질문"))
        assert "잠시 후" in texts_of(first)[0]
        fake_openai.response_delay = 0.0
        second = await ask(http, service, skill_request("빠른 질문"))  # waits for the first's turn
        await service.app[TASKS].join()
        third = await ask(http, service, skill_request("세 번째 질문"))
    texts = texts_of(second)
    assert "답변: 느린 질문" in texts[0]
    assert texts[-1] == "답변: 빠른 질문"
    assert texts_of(third) == ["답변: 세 번째 질문"]  # delivered once, not again


async def test_an_inline_answer_whose_request_is_gone_goes_by_callback(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # The request waits for its answer inline, but Kakao (or the network) dropped it before
    # the answer was written: the job delivers it by callback instead of counting it answered.
    fake_openai.response_delay = 1.0
    fake_openai.answer = "늦지 않은 답이에요."
    settings = settings_for(fake_openai, tmp_path, kakao_callback_budget=4.0)
    async with CallbackReceiver() as receiver, run_service(settings) as service:
        body = skill_request("질문", callback=receiver.url + "/tok1")
        with pytest.raises(TimeoutError):
            async with http.post(
                service.url + "/kakao/skill", json=body, timeout=aiohttp.ClientTimeout(total=0.3)
            ):
                pass
        (callback,) = await receiver.wait_for(1, timeout=20)
        await service.app[TASKS].join()
    assert texts_of(callback) == ["늦지 않은 답이에요."]
    assert len(fake_openai.requests) == 1


async def test_a_kept_answer_is_given_in_its_place_not_with_a_message_that_came_later(
    fake_openai: FakeOpenAI, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # An answer kept for the user (its callback failed) must come before the answers to the
    # messages after it. Taken by whichever request arrives next, it came after the answer to a
    # message still being answered, one by callback (the soak's Kakao answers out of order).
    fake_openai.answer = lambda messages: f"답변: {messages[-1]['content']}"
    fake_openai.response_delay = 1.0
    settings = settings_for(fake_openai, tmp_path, kakao_callback_budget=0.1)
    async with CallbackReceiver() as receiver, run_service(settings) as service:
        ack = await ask(http, service, skill_request("두 번째 질문", callback=receiver.url + "/b"))
        assert ack["useCallback"] is True
        # Meanwhile the answer to an earlier message is kept (its own callback had failed).
        await service.app[ENGINE].store.put_pending(KAKAO_KEY, "첫 번째 답이에요.", ttl=60)
        fake_openai.response_delay = 0.0
        ack = await ask(http, service, skill_request("세 번째 질문", callback=receiver.url + "/c"))
        assert ack["useCallback"] is True
        await receiver.wait_for(2, timeout=20)
        await service.app[TASKS].join()
    shown = [text for body in receiver.bodies for text in texts_of(body)]
    assert shown == [
        "앞서 물어보신 내용의 답변이에요.\n\n첫 번째 답이에요.",
        "답변: 두 번째 질문",
        "답변: 세 번째 질문",
    ]
