"""OpenAIChat: the real openai client over loopback HTTP against FakeOpenAI."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import pytest_asyncio

from core.errors import (
    ConfigError,
    LLMBadResponse,
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    LLMUnavailable,
)
from core.llm import OpenAIChat
from core.types import ChatMessage
from tests.support.openai_server import BreakHow, FakeOpenAI

SECRET = "sk-dari-test-0123456789abcdef"
PROMPT = [
    ChatMessage(role="system", content="당신은 친절한 사내 비서입니다."),
    ChatMessage(role="user", content="휴가 신청은 어떻게 하나요?"),
    ChatMessage(role="assistant", content="인사 포털에서 신청할 수 있어요."),
    ChatMessage(role="user", content="결재는 누가 하나요?"),
]

MakeLLM = Callable[..., OpenAIChat]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=SECRET) as fake:
        yield fake


@pytest_asyncio.fixture
async def make_llm(server: FakeOpenAI) -> AsyncIterator[MakeLLM]:
    """OpenAIChat against the fake server, closed after the test."""
    made: list[OpenAIChat] = []

    def make(**overrides: Any) -> OpenAIChat:
        options: dict[str, Any] = {
            "api_key": SECRET,
            "base_url": server.base_url,
            "timeout": 2.0,
            "max_retries": 0,
        }
        llm = OpenAIChat(**(options | overrides))
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.close()


async def collect(llm: OpenAIChat, *, max_tokens: int | None = 256) -> list[str]:
    return [d async for d in llm.stream(PROMPT, model="gpt-4o-mini", temperature=0.3, max_tokens=max_tokens)]


async def failure(llm: OpenAIChat) -> tuple[list[str], LLMError]:
    """The deltas that arrived and the error that ended the stream."""
    deltas: list[str] = []
    try:
        async for delta in llm.stream(PROMPT, model="gpt-4o-mini", temperature=0.3):
            deltas.append(delta)
    except LLMError as error:
        return deltas, error
    pytest.fail(f"the stream ended without an error after {deltas!r}")


def full_text(error: BaseException) -> str:
    """Everything a log line with a traceback would show, chained causes included."""
    return "".join(traceback.format_exception(error)) + repr(error)


# -- the happy path ------------------------------------------------------------------------------


async def test_korean_answer_arrives_whole_when_characters_are_split_across_http_chunks(
    server: FakeOpenAI, make_llm: MakeLLM
) -> None:
    server.answer = "네, 팀장님이 1차 결재를 하고 인사팀이 최종 승인해요. 😊"
    server.chunk_chars = 2
    server.write_size = 1  # every 3-byte Hangul syllable arrives in three pieces

    deltas = await collect(make_llm())

    assert "".join(deltas) == server.answer
    assert deltas[:3] == ["네,", " 팀", "장님"]


async def test_request_carries_model_temperature_max_tokens_and_messages(
    server: FakeOpenAI, make_llm: MakeLLM
) -> None:
    await collect(make_llm(), max_tokens=300)

    [body] = server.requests
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 300
    assert body["stream"] is True
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in PROMPT]
    assert server.calls[0].headers["Authorization"] == f"Bearer {SECRET}"


async def test_max_tokens_is_left_out_when_not_given(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    await collect(make_llm(), max_tokens=None)

    assert "max_tokens" not in server.requests[0]


async def test_usage_chunks_without_choices_add_no_text(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.send_usage = True

    assert "".join(await collect(make_llm())) == server.answer


async def test_a_local_server_needs_no_key(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.api_key = None

    assert "".join(await collect(make_llm(api_key=None))) == server.answer
    assert server.calls[0].headers["Authorization"] == "Bearer unused"


async def test_azure_uses_the_deployment_path_api_version_and_api_key_header(
    server: FakeOpenAI, make_llm: MakeLLM
) -> None:
    llm = make_llm(base_url=None, azure_endpoint=server.origin, api_version="2024-10-21")

    assert "".join(await collect(llm)) == server.answer

    [call] = server.calls
    assert call.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert call.query == {"api-version": "2024-10-21"}
    assert call.headers["api-key"] == SECRET


# -- retries by the client -----------------------------------------------------------------------


async def test_429_with_retry_after_zero_is_retried(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    # The client treats Retry-After: 0 as "no hint" and backs off ~0.5 s by itself.
    server.fail(429, retry_after="0")

    assert "".join(await collect(make_llm(max_retries=1))) == server.answer
    assert len(server.requests) == 2


async def test_two_500s_then_success(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.fail(500, times=2, retry_after_ms="1")

    assert "".join(await collect(make_llm(max_retries=2))) == server.answer
    assert len(server.requests) == 3


async def test_persistent_500_is_unavailable_after_every_retry(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.fail(503, times=10, retry_after_ms="1")

    deltas, error = await failure(make_llm(max_retries=2))

    assert deltas == []
    assert type(error) is LLMUnavailable
    assert "503" in str(error)
    assert len(server.requests) == 3


async def test_persistent_429_is_rate_limited_after_every_retry(
    server: FakeOpenAI, make_llm: MakeLLM
) -> None:
    server.fail(429, times=10, retry_after_ms="20")

    _, error = await failure(make_llm(max_retries=2))

    assert isinstance(error, LLMRateLimited)
    assert error.retry_after == pytest.approx(0.02)
    assert len(server.requests) == 3


def _in_30_seconds() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "retry_after_ms", "low", "high"),
    [
        ("7", None, 7.0, 7.0),
        ("1.5", None, 1.5, 1.5),
        (None, "2500", 2.5, 2.5),
        ("9", "250", 0.25, 0.25),  # the client also prefers milliseconds
        ("<in 30 seconds>", None, 20.0, 30.0),  # an HTTP date, made when the test runs
    ],
)
async def test_rate_limit_carries_the_servers_retry_after(
    server: FakeOpenAI,
    make_llm: MakeLLM,
    retry_after: str | None,
    retry_after_ms: str | None,
    low: float,
    high: float,
) -> None:
    if retry_after == "<in 30 seconds>":
        retry_after = _in_30_seconds()
    server.fail(429, retry_after=retry_after, retry_after_ms=retry_after_ms)

    _, error = await failure(make_llm(max_retries=0))

    assert isinstance(error, LLMRateLimited)
    assert error.retry_after is not None
    assert low <= error.retry_after <= high


@pytest.mark.parametrize("retry_after", [None, "soon"])
async def test_rate_limit_without_a_usable_hint_has_no_retry_after(
    server: FakeOpenAI, make_llm: MakeLLM, retry_after: str | None
) -> None:
    server.fail(429, retry_after=retry_after)

    _, error = await failure(make_llm(max_retries=0))

    assert isinstance(error, LLMRateLimited)
    assert error.retry_after is None


# -- failures ------------------------------------------------------------------------------------


async def test_slow_response_headers_time_out(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.response_delay = 30

    _, error = await failure(make_llm(timeout=0.3))

    assert type(error) is LLMTimeout


async def test_slow_first_token_times_out(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.first_token_delay = 30

    deltas, error = await failure(make_llm(timeout=0.3))

    assert type(error) is LLMTimeout
    assert deltas == []


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("disconnect", LLMUnavailable),
        ("error_event", LLMUnavailable),
        ("truncate", LLMBadResponse),
        ("garbage", LLMBadResponse),
        ("wrong_shape", LLMBadResponse),
    ],
)
async def test_a_stream_breaking_midway_keeps_what_arrived_and_raises(
    server: FakeOpenAI, make_llm: MakeLLM, how: BreakHow, expected: type[LLMError]
) -> None:
    server.break_stream(after=2, how=how)

    deltas, error = await failure(make_llm())

    assert deltas == ["안녕하", "세요."]
    assert type(error) is expected


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_client_errors_are_bad_responses_and_not_retried(
    server: FakeOpenAI, make_llm: MakeLLM, status: int
) -> None:
    server.fail(status, times=3)

    _, error = await failure(make_llm(max_retries=2))

    assert type(error) is LLMBadResponse
    assert str(status) in str(error)
    assert len(server.requests) == 1


async def test_the_key_never_appears_in_errors(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    errors: list[LLMError] = []
    # A wrong key: the 401 body echoes it back, as some gateways do in full.
    server.api_key = "sk-the-right-one"
    errors.append((await failure(make_llm()))[1])
    server.api_key = None
    for status in (400, 429, 500):
        server.fail(status, message=f"bad key {SECRET}")
        errors.append((await failure(make_llm()))[1])
    server.break_stream(after=1, how="disconnect")
    errors.append((await failure(make_llm()))[1])

    assert [type(e) for e in errors] == [
        LLMBadResponse,
        LLMBadResponse,
        LLMRateLimited,
        LLMUnavailable,
        LLMUnavailable,
    ]
    assert "401" in str(errors[0])
    for error in errors:
        assert SECRET not in full_text(error)
        assert server.origin not in full_text(error)


# -- ping and close ------------------------------------------------------------------------------


async def test_ping_lists_models(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    await make_llm().ping()

    assert [(c.method, c.path) for c in server.calls] == [("GET", "/v1/models")]


async def test_ping_does_not_retry(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.fail(500, times=5, retry_after_ms="1")

    with pytest.raises(LLMUnavailable):
        await make_llm(max_retries=3).ping()
    assert len(server.calls) == 1


async def test_ping_against_a_closed_port_is_unavailable(make_llm: MakeLLM) -> None:
    async with FakeOpenAI() as gone:
        base_url = gone.base_url

    with pytest.raises(LLMUnavailable) as caught:
        await make_llm(base_url=base_url).ping()
    assert SECRET not in full_text(caught.value)


async def test_stream_against_a_closed_port_is_unavailable(make_llm: MakeLLM) -> None:
    async with FakeOpenAI() as gone:
        base_url = gone.base_url

    _, error = await failure(make_llm(base_url=base_url))

    assert type(error) is LLMUnavailable


async def test_a_consumer_stopping_early_frees_the_connection(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    llm = make_llm()
    stream = llm.stream(PROMPT, model="gpt-4o-mini", temperature=0.3)
    assert await anext(stream) == "안녕하"
    await stream.aclose()

    # The same client still answers in full afterwards.
    assert "".join(await collect(llm)) == server.answer


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"api_key": None, "base_url": None}, "api_key"),
        ({"api_key": None, "base_url": None, "azure_endpoint": "https://x.openai.azure.com"}, "api_key"),
        ({"api_key": "k", "base_url": None, "azure_endpoint": "https://x.openai.azure.com"}, "api_version"),
    ],
)
def test_unusable_settings_are_config_errors(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        OpenAIChat(**options)
    assert caught.value.field == field
