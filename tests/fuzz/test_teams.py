"""POST /api/messages over real HTTP, in local mode (no JWT) so every body reaches the parser:
a 4xx JSON error, or the 200 that acknowledges an activity (an invoke's JSON answer included)."""

from __future__ import annotations

import itertools
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

PAYLOADS = Path(__file__).resolve().parents[1] / "adapters" / "teams" / "payloads"
LIMIT = 256 * 1024
# Placeholders filled in just before sending, so that what hypothesis draws depends on nothing
# outside it: the stand-in's URL (the bot answers only there) and a fresh activity id (or the
# door would take every example for a redelivery of the first).
SERVICE_URL = "{service_url}"
ACTIVITY_ID = "{activity_id}"
_ids = itertools.count(1)


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    body.update(serviceUrl=SERVICE_URL, id=ACTIVITY_ID)
    return body


BASES: dict[str, dict[str, Any]] = {
    name: load(name)
    for name in (
        "personal_message",
        "channel_thread_mention",
        "conversation_update_bot_added_personal",
        "conversation_update_member_added",
        "feedback_invoke",
    )
}
TYPES = (
    *("message", "invoke", "conversationUpdate", "messageReaction", "typing", "event", "endOfConversation"),
    *("installationUpdate", "messageUpdate", "messageDelete", "trace", "handoff", "", "MESSAGE", "x" * 300),
)
INVOKES = (
    *("message/submitAction", "adaptiveCard/action", "signin/verifyState", "composeExtension/query"),
    *("task/fetch", "config/fetch", "healthCheck", "", "unknown/name"),
)


def filled(body: bytes, stack: Stack) -> bytes:
    """The placeholders in an encoded body replaced (where the fuzz left them)."""
    fresh = f"fuzz-{next(_ids)}".encode()
    url = stack.connector.service_url.encode()
    return body.replace(SERVICE_URL.encode(), url).replace(ACTIVITY_ID.encode(), fresh)


def addressed(body: dict[str, Any], stack: Stack) -> dict[str, Any]:
    """A copy of ``body`` with its placeholders filled."""
    done: dict[str, Any] = json.loads(filled(json.dumps(body).encode(), stack))
    return done


def message(stack: Stack, text: str) -> dict[str, Any]:
    body = addressed(BASES["personal_message"], stack)
    body["text"] = text
    return body


async def check(stack: Stack, body: bytes, *, content_type: str = "application/json") -> Reply:
    return await stack.check("/api/messages", body, headers={"Content-Type": content_type})


@pytest.mark.parametrize("name", sorted(bodies(limit=LIMIT)))
async def test_a_bad_body_gets_a_json_4xx(stack: Stack, name: str) -> None:
    assert_refused(await check(stack, bodies(limit=LIMIT)[name]), name)


@pytest.mark.parametrize("value", NASTY_VALUES, ids=value_id)
@pytest.mark.parametrize(
    "field", ["text", "id", "from.id", "conversation.id", "channelData.tenant.id", "serviceUrl", "locale"]
)
async def test_a_nasty_value_in_a_message(stack: Stack, field: str, value: Any) -> None:
    body = message(stack, "안녕하세요")
    where, key = body, field
    while "." in key:
        head, key = key.split(".", 1)
        where = where[head]
    where[key] = value
    await check(stack, json.dumps(body, allow_nan=True).encode())


@pytest.mark.parametrize("kind", TYPES, ids=value_id)
@pytest.mark.parametrize("name", INVOKES, ids=value_id)
async def test_any_activity_type_and_invoke_name(stack: Stack, kind: str, name: str) -> None:
    body = addressed(BASES["feedback_invoke"], stack)
    body["type"], body["name"] = kind, name
    await check(stack, json.dumps(body).encode())


async def test_sizes_near_the_limit_and_chunked_bodies(stack: Stack) -> None:
    near = sized(message(stack, ""), field_path=("text",), total=LIMIT - 1)
    assert (await check(stack, near)).status == 200
    over = sized(message(stack, ""), field_path=("text",), total=LIMIT + 1)
    assert (await check(stack, over)).status == 413
    headers = {"Content-Type": "application/json"}
    body = json.dumps(message(stack, "안녕")).encode()
    assert (await stack.send("/api/messages", body, headers=headers, chunked=True)).status == 200
    too_long = await stack.send("/api/messages", over, headers=headers, chunked=True)
    assert_well_behaved(too_long)
    assert too_long.status == 413


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_any_content_type(stack: Stack, content_type: str) -> None:
    reply = await check(stack, json.dumps(message(stack, "안녕하세요")).encode(), content_type=content_type)
    assert reply.status == (200 if content_type.startswith("application/json") else 415)


@settings(max_examples=300, **FUZZ)
@given(
    body=st.sampled_from(sorted(BASES))
    # The serviceUrl is where the bot sends its answer: it stays the stand-in's.
    .flatmap(lambda name: mutated(BASES[name], keep=frozenset({("serviceUrl",)})))
    .flatmap(encoded)
)
async def test_fuzzed_activities(stack: Stack, body: bytes) -> None:
    await check(stack, filled(body, stack))


@settings(max_examples=60, **FUZZ)
@given(body=st.one_of(st.binary(max_size=200), json_values.flatmap(encoded)))
async def test_fuzzed_bodies(stack: Stack, body: bytes) -> None:
    await check(stack, body)


async def test_afterwards_the_service_is_healthy_and_still_answers(stack: Stack) -> None:
    assert await stack.healthy()
    body = message(stack, "안녕하세요")
    assert (await check(stack, json.dumps(body).encode())).status == 200
    answers = [r for r in stack.connector.messages if r.reply_to == body["id"]]
    assert [r.text for r in answers][-1:] == [ANSWER]
