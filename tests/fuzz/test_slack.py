"""POST /slack/events over real HTTP, signed with the right secret so every body reaches the parser:
a 4xx JSON error, or Slack's 200 acknowledgement."""

from __future__ import annotations

import itertools
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.corpus import CONTENT_TYPES, NASTY_TEXT, NASTY_VALUES, bodies, sized, value_id
from tests.fuzz.harness import ANSWER, FUZZ, Reply, Stack, assert_refused, assert_well_behaved, slack_headers
from tests.fuzz.strategies import encoded, json_values, mutated, texts

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYLOADS = Path(__file__).resolve().parents[1] / "adapters" / "slack" / "payloads"
LIMIT = 256 * 1024
# Filled in just before sending (what hypothesis draws depends on nothing outside it): a new
# event id and message ts per request, or dedupe would take every example for a Slack retry.
EVENT_ID, TS = "{event_id}", "{ts}"
_ids = itertools.count(1)


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    body["event_id"] = EVENT_ID
    if "ts" in body["event"]:
        body["event"]["ts"] = body["event"]["event_ts"] = TS
    return body


BASES: dict[str, dict[str, Any]] = {
    "mention": load("slack_event_app_mention_bolt"),
    "channel message": load("slack_event_message_channel_user"),
    "thread reply": load("slack_event_message_channel_thread_reply"),
    "DM": load("slack_event_message_im_assistant_thread"),
    "edit": load("slack_event_message_changed_channel_thread"),
    "assistant thread": load("slack_event_assistant_thread_started_bolt"),
    "url verification": {
        "token": "t",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdAL",
        "type": "url_verification",
    },
}
COMMAND = {
    "token": "t",
    "team_id": "T111",
    "team_domain": "dari",
    "channel_id": "C111",
    "channel_name": "general",
    "user_id": "W222",
    "user_name": "hong",
    "command": "/dari",
    "text": "도움말",
    "api_app_id": "A111",
    "trigger_id": "1.2.3",
}


def filled(body: bytes) -> bytes:
    """An encoded body with a fresh event id and ts where the fuzz left the placeholders."""
    n = next(_ids)
    return body.replace(EVENT_ID.encode(), b"EvFuzz%d" % n).replace(
        TS.encode(), b"%d.%06d" % (1_800_000_000 + n, n)
    )


def fresh(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` with its placeholders filled."""
    done: dict[str, Any] = json.loads(filled(json.dumps(body).encode()))
    return done


def mention(text: str) -> dict[str, Any]:
    body = fresh(BASES["mention"])
    body["event"]["text"] = f"<@W111> {text}"
    return body


async def check(stack: Stack, body: bytes, *, content_type: str = "application/json") -> Reply:
    headers = {"Content-Type": content_type, **slack_headers(body)}
    return await stack.check("/slack/events", body, headers=headers)


# JSON objects of an unknown type: Slack's notices the door does not read are acknowledged.
MAY_BE_ACKNOWLEDGED = {"escaped null", "escaped lone surrogate"}


@pytest.mark.parametrize("name", sorted(bodies(limit=LIMIT)))
async def test_a_bad_body_gets_a_json_4xx(stack: Stack, name: str) -> None:
    reply = await check(stack, bodies(limit=LIMIT)[name])
    assert_refused(reply, name, may_acknowledge=MAY_BE_ACKNOWLEDGED)


@pytest.mark.parametrize("value", NASTY_VALUES, ids=value_id)
@pytest.mark.parametrize("field", ["text", "user", "channel", "ts", "team_id", "type"])
async def test_a_nasty_value_in_a_signed_mention(stack: Stack, field: str, value: Any) -> None:
    body = mention("안녕하세요")
    where = body if field in ("team_id",) else body["event"]
    where[field] = value
    await check(stack, json.dumps(body, allow_nan=True).encode())


@pytest.mark.parametrize("value", NASTY_TEXT, ids=value_id)
@pytest.mark.parametrize("field", ["command", "text", "user_id", "channel_id", "team_id", "response_url"])
async def test_a_nasty_value_in_a_slash_command(stack: Stack, field: str, value: str) -> None:
    form = {**COMMAND, "response_url": stack.slack.response_url, field: value}
    body = urllib.parse.urlencode(form, encoding="utf-8", errors="surrogatepass").encode()
    await check(stack, body, content_type="application/x-www-form-urlencoded")


async def test_sizes_near_the_limit_and_chunked_bodies(stack: Stack) -> None:
    near = sized(mention(""), field_path=("event", "text"), total=LIMIT - 1)
    assert (await check(stack, near)).status == 200
    over = sized(mention(""), field_path=("event", "text"), total=LIMIT + 1)
    assert (await check(stack, over)).status == 413
    body = json.dumps(mention("안녕")).encode()
    headers = {"Content-Type": "application/json", **slack_headers(body)}
    assert (await stack.send("/slack/events", body, headers=headers, chunked=True)).status == 200
    headers = {"Content-Type": "application/json", **slack_headers(over)}
    too_long = await stack.send("/slack/events", over, headers=headers, chunked=True)
    assert_well_behaved(too_long)
    assert too_long.status == 413


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_any_content_type(stack: Stack, content_type: str) -> None:
    await check(stack, json.dumps(mention("안녕하세요")).encode(), content_type=content_type)
    form = {**COMMAND, "response_url": stack.slack.response_url}
    await check(stack, urllib.parse.urlencode(form).encode(), content_type=content_type)


async def test_a_lone_surrogate_is_refused_or_answered_never_apologised_for(stack: Stack) -> None:
    """JSON can carry "\\ud800", which no UTF-8 encoder takes: refuse it, or answer it properly."""
    body = mention("연차 며칠 남았어요? \ud800")
    reply = await check(stack, json.dumps(body).encode())
    posted = [m.text for m in stack.slack.thread("C111", body["event"]["ts"])]
    assert posted == ([] if reply.status >= 400 else [ANSWER])


@settings(max_examples=300, **FUZZ)
@given(body=st.sampled_from(sorted(BASES)).flatmap(lambda name: mutated(BASES[name])).flatmap(encoded))
async def test_fuzzed_events(stack: Stack, body: bytes) -> None:
    await check(stack, filled(body))


@settings(max_examples=60, **FUZZ)
@given(
    form=st.dictionaries(st.sampled_from([*COMMAND, "payload", "ssl_check", "type"]), texts, max_size=8),
    base=st.booleans(),
)
async def test_fuzzed_forms(stack: Stack, form: dict[str, str], base: bool) -> None:
    fields = {**COMMAND, "response_url": stack.slack.response_url, **form} if base else form
    body = urllib.parse.urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
    await check(stack, body, content_type="application/x-www-form-urlencoded")


@settings(max_examples=60, **FUZZ)
@given(body=st.one_of(st.binary(max_size=200), json_values.flatmap(encoded)))
async def test_fuzzed_bodies(stack: Stack, body: bytes) -> None:
    await check(stack, body)


async def test_afterwards_the_service_is_healthy_and_still_answers(stack: Stack) -> None:
    assert await stack.healthy()
    body = mention("안녕하세요")
    reply = await check(stack, json.dumps(body).encode())
    assert reply.status == 200
    assert [m.text for m in stack.slack.thread("C111", body["event"]["ts"])] == [ANSWER]
