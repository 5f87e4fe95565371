"""The Slack door over real HTTP: signed requests in, Web API calls out to the stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from adapters import slack
from adapters.settings import Settings
from adapters.slack import DoorOptions
from tests.adapters.slack.conftest import PAYLOADS, Door, payload, running_door
from tests.support.slack_api import IDENTITY

MENTION = "slack_event_app_mention_bolt.json"
THREAD = "1595926230.009600"


def with_name(door: Door, user: str = "W222", name: str = "김민수") -> None:
    door.api.users[user] = {"id": user, "name": "minsu", "profile": {"display_name": name}}


async def test_url_verification_echoes_the_challenge(door: Door) -> None:
    reply = await door.post(
        {
            "token": "t",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    assert reply.status == 200
    assert reply.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_mention_is_acked_before_the_answer_and_answered_in_its_thread(door: Door) -> None:
    with_name(door)
    door.llm.gate = asyncio.Event()  # the LLM holds its answer until the ack is seen
    reply = await door.post(payload(MENTION))
    assert (reply.status, reply.text) == (200, "")
    assert len(door.llm.calls) <= 1 and not door.api.thread("C111", THREAD)
    door.llm.gate.set()
    await door.settle()
    [message] = door.api.thread("C111", THREAD)
    assert message.text == "네, **확인**했어요." and message.streamed and not message.streaming
    [start] = door.api.called("chat.startStream")
    assert (start.params["recipient_user_id"], start.params["recipient_team_id"]) == ("W222", "T111")
    assert door.llm.calls[0][-1].content == "[김민수] Hi there!"
    assert door.store.turns  # the thread's memory now has the exchange


async def test_dm_is_answered_in_the_dm_and_kept_private(door: Door) -> None:
    body = payload("slack_event_message_im_assistant_thread.json", thread_ts=None, text="연차 규정 알려 줘")
    assert (await door.post(body)).status == 200
    await door.settle()
    [message] = door.api.thread("D111")
    assert message.text == "네, *확인*\u200b했어요." and not message.streamed  # top level: posted, mrkdwn
    assert not door.api.called("users.info")  # a 1:1 prompt needs no names
    assert door.llm.calls[0][-1].content == "연차 규정 알려 줘"
    [key] = door.store.turns
    assert key == "slack:default:E111%3AT111:D111"


async def test_assistant_thread_greets_suggests_and_shows_status_and_title(door: Door) -> None:
    assert (await door.post(payload("slack_event_assistant_thread_started_bolt.json"))).status == 200
    await door.settle()
    [greeting] = door.api.thread("D111", "1726133698.626339")
    assert greeting.text.startswith("안녕하세요, 사내 업무 도우미 다리예요.")
    [prompts] = door.api.called("assistant.threads.setSuggestedPrompts")
    assert prompts.params["title"] == "이렇게 물어보세요"
    assert [p["message"] for p in prompts.params["prompts"]] == [
        "메일 초안 써 주세요",
        "회의록 요약해 주세요",
        "영어로 번역해 주세요",
        "도움말",
    ]

    question = payload("slack_event_message_im_assistant_thread.json", text="회의록 요약해 주세요")
    assert (await door.post(question)).status == 200
    await door.settle()
    [status, *cleared] = door.api.called("assistant.threads.setStatus")
    assert status.params["status"] == "답변을 준비하고 있어요…" and not cleared
    [title] = door.api.called("assistant.threads.setTitle")
    assert title.params["title"] == "회의록 요약해 주세요"
    answer = door.api.thread("D111", "1726133698.626339")[-1]
    assert answer.streamed and answer.text == "네, **확인**했어요."
    order = [c.method for c in door.api.calls]
    assert order.index("assistant.threads.setStatus") < order.index("chat.startStream")

    second = payload("slack_event_message_im_assistant_thread.json", ts="1726133799.000100", text="고마워요")
    await door.post(second)
    await door.settle()
    assert len(door.api.called("assistant.threads.setTitle")) == 1  # the title is set once


@pytest.mark.parametrize(
    "change",
    [
        {"secret": "wrong-secret"},
        {"timestamp": -301},  # seconds from now, more than Slack's 5-minute window
        {"timestamp": +310},
        {"timestamp": "not-a-number"},
        {"headers": {"X-Slack-Signature": ""}},
    ],
)
async def test_bad_signatures_and_stale_timestamps_get_401(door: Door, change: dict[str, Any]) -> None:
    if isinstance(change.get("timestamp"), int):
        change = {"timestamp": str(int(time.time()) + change["timestamp"])}
    reply = await door.post(payload(MENTION), **change)
    assert reply.status == 401
    assert reply.json()["error"]["code"] == "unauthorized"
    assert len(door.tasks) == 0 and not door.api.calls


async def test_retries_and_double_delivery_give_one_answer(door: Door) -> None:
    mention = payload(MENTION)
    assert (await door.post(mention)).status == 200
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert (await door.post(mention, headers=retry)).status == 200
    # the same message again, as message.channels (another event id, same channel and ts)
    echo = payload(MENTION, type="message", channel_type="channel")
    assert (await door.post(echo)).status == 200
    await door.settle()
    assert len(door.llm.calls) == 1
    assert len(door.api.called("chat.startStream")) == 1


async def test_dedupe_holds_across_processes_sharing_a_store() -> None:
    async with running_door() as first, running_door() as second:
        second.store.claims = first.store.claims  # one shared store, as with Redis
        mention = payload(MENTION)
        await first.post(mention)
        await second.post(mention, headers={"X-Slack-Retry-Num": "1"})
        await first.settle()
        await second.settle()
        assert len(first.llm.calls) + len(second.llm.calls) == 1


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("slack_event_bot_message_self.json", {}),
        ("slack_event_bot_message_self.json", {"subtype": None, "user": "W111"}),  # own echo, no subtype
        ("slack_event_bot_message_classic.json", {}),
        ("slack_event_bot_message_other_app.json", {}),
        ("slack_event_message_from_other_app_bot_id.json", {"thread_ts": THREAD}),
        ("slack_event_message_channel_user.json", {"thread_ts": THREAD}),  # the bot's own user
        ("slack_event_message_changed_channel_thread.json", {}),
        ("slack_event_message_deleted.json", {}),
        ("slack_event_assistant_thread_context_changed_bolt.json", {}),
        ("slack_event_reaction_added_by_self.json", {}),
    ],
)
async def test_bots_self_and_hidden_messages_get_no_answer(
    door: Door, name: str, event: dict[str, Any]
) -> None:
    await door.post(payload(MENTION))  # the bot takes part in the thread
    await door.settle()
    posts = len(door.api.messages)
    reply = await door.post(payload(name, **event))
    assert reply.status == 200
    assert len(door.tasks) == 0  # nothing was even started
    assert len(door.llm.calls) == 1 and len(door.api.messages) == posts


async def test_thread_follow_ups_are_answered_once_the_bot_took_part(door: Door) -> None:
    reply_body = {"thread_ts": THREAD, "channel": "C111", "ts": "1595926299.000200", "text": "더 자세히요"}
    await door.post(payload("slack_event_message_channel_thread_reply.json", **reply_body))
    await door.settle()
    assert not door.llm.calls  # not our thread yet

    await door.post(payload(MENTION))
    await door.settle()
    follow_up = {**reply_body, "ts": "1595926300.000300"}
    await door.post(payload("slack_event_message_channel_thread_reply.json", **follow_up))
    await door.settle()
    assert len(door.llm.calls) == 2
    assert door.llm.calls[1][-1].content == "[W222] 더 자세히요"  # no users.info answer: the id
    assert len(door.api.thread("C111", THREAD)) == 2


async def test_thread_follow_ups_can_be_turned_off() -> None:
    async with running_door(options=DoorOptions(thread_follow_ups=False, write_interval=0.01)) as door:
        await door.post(payload(MENTION))
        await door.settle()
        body = {"thread_ts": THREAD, "channel": "C111", "ts": "1595926300.000300", "text": "더 자세히요"}
        await door.post(payload("slack_event_message_channel_thread_reply.json", **body))
        await door.settle()
        assert len(door.llm.calls) == 1


async def test_two_workspaces_never_share_memory(door: Door) -> None:
    await door.post(payload(MENTION))
    other = payload(MENTION)
    other["team_id"], other["enterprise_id"] = "T999", None
    await door.post(other)
    await door.settle()
    assert len(door.llm.calls) == 2  # same channel id and ts, different workspace: two questions
    assert sorted(door.store.turns) == [
        "slack:default:E111%3AT111:C111:1595926230.009600",
        "slack:default:T999:C111:1595926230.009600",
    ]


MALFORMED: list[tuple[str | bytes, str]] = [
    ("{not json", "application/json"),
    ("[1, 2, 3]", "application/json"),
    ("hello", "text/plain"),
    ("", "application/json"),
    (b"\xff\xfe{}", "application/json"),
    ('{"type": 5}', "application/json"),
    ('{"type": "event_callback"}', "application/json"),
    ('{"type": "event_callback", "event": "app_mention"}', "application/json"),
    ('{"type": "event_callback", "event": {"type": "app_mention", "user": 5}}', "application/json"),
    ('{"type": "event_callback", "event": {"type": "message", "channel": {"id": []}}}', "application/json"),
    ('{"type": "event_callback", "event": {"type": "message"}, "authorizations": [5]}', "application/json"),
    ('{"type": "event_callback", "event": {"type": "message"}, "team": 7}', "application/json"),
    ('{"type": "url_verification"}', "application/json"),
    ("command=", "application/x-www-form-urlencoded"),
    ("a=1&&&=", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
async def test_malformed_signed_bodies_get_a_4xx_json(
    door: Door, body: str | bytes, content_type: str
) -> None:
    reply = await door.post(body, content_type=content_type)
    assert 400 <= reply.status < 500, reply.text
    assert reply.json()["error"]["code"] == "bad_request"
    assert reply.headers["X-Slack-No-Retry"] == "1"


async def test_odd_but_well_formed_bodies_are_acknowledged(door: Door) -> None:
    for body in (
        '{"type": "app_rate_limited", "team_id": "T1", "minute_rate_limited": 1518467820}',
        '{"type": "event_callback", "event": {"type": "app_mention"}}',  # nothing to answer
        "payload=%7B%7D",  # interactivity is off
        "ssl_check=1&token=x",  # Slack checking the certificate (bolt answers it)
    ):
        reply = await door.post(body, content_type="application/x-www-form-urlencoded")
        assert reply.status == 200, (body, reply.text)
    assert len(door.tasks) == 0


async def test_a_too_large_body_gets_413(door: Door) -> None:
    reply = await door.post("x" * (65 * 1024), content_type="text/plain")
    assert reply.status == 413


def test_setup_reports_off_without_credentials() -> None:
    app = web.Application()
    bare = Settings(slack_bot_token=None, slack_signing_secret=None, _env_file=None)  # type: ignore[call-arg]
    assert slack.setup(app, bare) == "off: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set"
    half = Settings(slack_bot_token=SecretStr("xoxb-1"), slack_signing_secret=None, _env_file=None)  # type: ignore[call-arg]
    assert slack.setup(app, half) == "off: SLACK_SIGNING_SECRET is not set"
    assert not list(app.router.routes()) and not app.cleanup_ctx  # nothing mounted


async def test_setup_reports_on(door: Door) -> None:
    assert door.status == "on (events at /slack/events)"


async def test_no_misleading_token_warning_when_the_token_is_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")  # as in production; bolt reads it itself
    async with running_door() as door:
        assert (await door.post(payload(MENTION))).status == 200
        await door.settle()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "token" in r.getMessage()]


def test_the_stand_in_is_the_app_of_the_recorded_self_events() -> None:
    recorded = json.loads((PAYLOADS / "slack_bolt_test_self_identity.json").read_text(encoding="utf-8"))
    assert IDENTITY["bot_id"] == recorded["auth_test_response"]["bot_id"]
    assert payload(MENTION)["event"]["text"].startswith(f"<@{IDENTITY['user_id']}>")
