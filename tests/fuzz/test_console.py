"""The console's JSON API over real HTTP (from loopback, so the guard lets it through):
a 4xx JSON error, or a 200 Server-Sent Events stream that ends in ``done`` or ``error``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.corpus import CONTENT_TYPES, NASTY_VALUES, bodies, value_id
from tests.fuzz.harness import ANSWER, FUZZ, Reply, Stack, assert_refused, assert_well_behaved
from tests.fuzz.strategies import encoded, json_values, mutated

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHAT = "/console/api/chat"
LIMIT = 32 * 1024  # the console's own limit (adapters.web.api.MAX_BODY_BYTES)
BASE: dict[str, Any] = {"bot": "default", "text": "안녕하세요", "session": "fuzz-session-0001"}


def events(reply: Reply) -> list[tuple[str, Any]]:
    """The SSE stream as (event, data) pairs."""
    found: list[tuple[str, Any]] = []
    for block in reply.body.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        found.append((lines["event"], json.loads(lines["data"])))
    return found


async def check(stack: Stack, body: bytes, *, content_type: str = "application/json") -> Reply:
    reply = await stack.check(CHAT, body, headers={"Content-Type": content_type})
    if reply.status == 200:
        assert reply.content_type == "text/event-stream"
        assert events(reply)[-1][0] in ("done", "error")
    return reply


@pytest.mark.parametrize("name", sorted(bodies(limit=LIMIT)))
async def test_a_bad_body_gets_a_json_4xx(stack: Stack, name: str) -> None:
    assert_refused(await check(stack, bodies(limit=LIMIT)[name]), name)


@pytest.mark.parametrize("value", NASTY_VALUES, ids=value_id)
@pytest.mark.parametrize("field", ["bot", "text", "session"])
async def test_a_nasty_value_in_a_chat_request(stack: Stack, field: str, value: Any) -> None:
    await check(stack, json.dumps({**BASE, field: value}, allow_nan=True).encode())


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_any_content_type(stack: Stack, content_type: str) -> None:
    reply = await check(stack, json.dumps(BASE).encode(), content_type=content_type)
    assert reply.status == (200 if content_type.startswith("application/json") else 415)


async def test_chunked_bodies(stack: Stack) -> None:
    headers = {"Content-Type": "application/json"}
    ok = await stack.send(CHAT, json.dumps(BASE).encode(), headers=headers, chunked=True)
    assert ok.status == 200
    over = json.dumps({**BASE, "text": "x" * LIMIT}).encode()
    too_long = await stack.send(CHAT, over, headers=headers, chunked=True)
    assert_well_behaved(too_long)
    assert too_long.status == 413


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", [CHAT, "/console/api/bots", "/console/api/status", "/console/api/nothing"])
async def test_other_methods_and_paths(stack: Stack, method: str, path: str) -> None:
    reply = await stack.send(path, b"{}", method=method, headers={"Content-Type": "application/json"})
    assert_well_behaved(reply)


@settings(max_examples=300, **FUZZ)
@given(body=mutated(BASE).flatmap(encoded))
async def test_fuzzed_chat_requests(stack: Stack, body: bytes) -> None:
    await check(stack, body)


@settings(max_examples=60, **FUZZ)
@given(body=st.one_of(st.binary(max_size=200), json_values.flatmap(encoded)))
async def test_fuzzed_bodies(stack: Stack, body: bytes) -> None:
    await check(stack, body)


@settings(max_examples=40, **FUZZ)
@given(
    query=st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3),
    path=st.sampled_from(["/console/api/bots", "/console/api/status", "/healthz", "/readyz", "/metrics"]),
)
async def test_fuzzed_queries(stack: Stack, query: dict[str, str], path: str) -> None:
    before = len(stack.crashes)
    async with stack.http.get(stack.service.url + path, params=query) as response:
        reply = Reply(response.status, response.content_type, await response.read())
    assert_well_behaved(reply)
    assert stack.crashes[before:] == []


async def test_afterwards_the_service_is_healthy_and_still_answers(stack: Stack) -> None:
    assert await stack.healthy()
    reply = await check(stack, json.dumps({**BASE, "session": "after-the-fuzz"}).encode())
    assert events(reply)[-1] == ("done", {"text": ANSWER})
