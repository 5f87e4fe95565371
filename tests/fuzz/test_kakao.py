"""POST /kakao/skill over real HTTP: whatever arrives, a 4xx JSON error or a skill answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.corpus import CONTENT_TYPES, NASTY_VALUES, bodies, sized, value_id
from tests.fuzz.harness import ANSWER, FUZZ, Reply, Stack, assert_refused, assert_well_behaved
from tests.fuzz.strategies import encoded, json_values, mutated

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYLOADS = Path(__file__).resolve().parents[1] / "adapters" / "kakao" / "payloads"
LIMIT = 256 * 1024  # the service's default body limit (DARI_MAX_BODY_BYTES)
BASE: dict[str, Any] = json.loads((PAYLOADS / "skill_request_callback.json").read_text(encoding="utf-8"))
BASE["userRequest"]["callbackUrl"] = "https://bot-api.callback.invalid/callback/token"


def request(text: str, *, user: str = "fuzz-user") -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(BASE))
    body["userRequest"]["utterance"] = text
    body["userRequest"]["user"]["id"] = user
    del body["userRequest"]["callbackUrl"]
    return body


def assert_skill_answer(reply: Reply) -> None:
    """A 200 is always a skill response Kakao can show."""
    assert_well_behaved(reply)
    if reply.status == 200:
        answer = reply.json()
        assert answer["version"] == "2.0"
        assert answer.get("useCallback") is True or 1 <= len(answer["template"]["outputs"]) <= 3


async def check(stack: Stack, body: bytes, *, content_type: str = "application/json") -> Reply:
    reply = await stack.check("/kakao/skill", body, headers={"Content-Type": content_type})
    assert_skill_answer(reply)
    return reply


@pytest.mark.parametrize("name", sorted(bodies(limit=LIMIT)))
async def test_a_bad_body_gets_a_json_4xx(stack: Stack, name: str) -> None:
    assert_refused(await check(stack, bodies(limit=LIMIT)[name]), name)


@pytest.mark.parametrize("value", NASTY_VALUES, ids=value_id)
@pytest.mark.parametrize("field", ["utterance", "user.id", "bot.id", "callbackUrl", "params"])
async def test_a_nasty_value_in_a_real_request(stack: Stack, field: str, value: Any) -> None:
    body = json.loads(json.dumps(BASE))
    where = {"user.id": body["userRequest"]["user"], "bot.id": body["bot"]}.get(field, body["userRequest"])
    where[field.split(".")[-1]] = value
    encoded = json.dumps(body, ensure_ascii=True, allow_nan=True).encode()
    await check(stack, encoded)


async def test_sizes_near_the_limit_and_chunked_bodies(stack: Stack) -> None:
    near = sized(request(""), field_path=("userRequest", "utterance"), total=LIMIT - 1)
    answered = await check(stack, near)
    assert answered.status == 200, "an over-long utterance is cut, not refused"
    over = sized(request(""), field_path=("userRequest", "utterance"), total=LIMIT + 1)
    assert (await check(stack, over)).status == 413
    headers = {"Content-Type": "application/json"}
    chunked = await stack.send(
        "/kakao/skill", json.dumps(request("안녕")).encode(), headers=headers, chunked=True
    )
    assert chunked.status == 200
    too_long = await stack.send("/kakao/skill", over, headers=headers, chunked=True)
    assert_well_behaved(too_long)
    assert too_long.status == 413


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_any_content_type(stack: Stack, content_type: str) -> None:
    await check(stack, json.dumps(request("안녕하세요")).encode(), content_type=content_type)
    await check(stack, b"a=1&b=2", content_type=content_type)


@settings(max_examples=300, **FUZZ)
@given(body=mutated(BASE).flatmap(encoded))
async def test_fuzzed_skill_requests(stack: Stack, body: bytes) -> None:
    await check(stack, body)


@settings(max_examples=60, **FUZZ)
@given(body=st.one_of(st.binary(max_size=200), json_values.flatmap(encoded)))
async def test_fuzzed_bodies(stack: Stack, body: bytes) -> None:
    await check(stack, body)


async def test_afterwards_the_service_is_healthy_and_still_answers(stack: Stack) -> None:
    assert await stack.healthy()
    reply = await check(stack, json.dumps(request("안녕하세요", user="after-the-fuzz")).encode())
    assert reply.status == 200
    assert reply.json()["template"]["outputs"][0]["simpleText"]["text"] == ANSWER
