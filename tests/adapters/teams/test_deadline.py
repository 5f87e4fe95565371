"""Bot Framework's deadline: answer in time, send slow answers proactively, answer each activity once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.worker import WORKER
from tests.adapters.teams.conftest import Door, bot_app_id, payload, run_door
from tests.support.botframework import ACCESS_TOKEN, BotConnector, TokenIssuer, stream_info
from tests.support.fakes import ScriptedLLM

THREAD = "19:6848757105754c8981c67612732d9aa7@thread.tacv2;messageid=1759881511856"


def held(llm: ScriptedLLM) -> asyncio.Event:
    llm.gate = asyncio.Event()
    return llm.gate


async def test_a_slow_answer_arrives_proactively_after_a_timely_response(
    connector: BotConnector, llm: ScriptedLLM
) -> None:
    gate = held(llm)
    async with run_door(connector, llm, deadline=0.2) as door:
        status, _ = await door.post(payload("channel_thread_mention", connector))

        assert status == 200, "the HTTP response did not wait for the answer"
        await llm.called()  # the answer is in flight
        assert connector.messages == []
        gate.set()
        (reply,) = await connector.wait_for(1)
        await door.settle()

    assert len(connector.messages) == 1
    assert reply.conversation == THREAD
    assert reply.reply_to == "1759944781430", "the proactive reply still answers the message"


async def test_a_slow_stream_finishes_proactively(connector: BotConnector, llm: ScriptedLLM) -> None:
    gate = held(llm)
    async with run_door(connector, llm, deadline=0.2) as door:
        status, _ = await door.post(payload("personal_message", connector, text="긴 보고서를 써 주세요"))

        await llm.called()  # the stream opens before the model is asked
        (start,) = connector.received
        assert status == 200
        assert (stream_info(start.body) or {}).get("streamType") == "informative"
        gate.set()
        (final,) = await connector.wait_for(1)
        await door.settle()

    assert stream_info(final.body) == {"type": "streaminfo", "streamType": "final", "streamId": "activity-1"}
    assert final.reply_to == "1485983408511"


async def test_a_redelivered_activity_is_answered_once(connector: BotConnector, llm: ScriptedLLM) -> None:
    gate = held(llm)
    activity = payload("channel_thread_mention", connector)
    async with run_door(connector, llm, deadline=0.2) as door:
        first, again = await asyncio.gather(door.post(activity), door.post(activity))
        gate.set()
        await connector.wait_for(1)
        await door.settle()
        later, _ = await door.post(activity)
        await door.settle()

    assert first[0] == again[0] == later == 200
    assert len(connector.messages) == 1
    assert len(llm.calls) == 1


async def test_a_message_whose_job_was_never_recorded_is_answered_when_redelivered(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process dies after the request arrived and before the job was recorded: Teams gets
    # no 200 and sends the activity again, which must not look answered already.
    worker = door.app[WORKER]
    submit = worker.submit

    async def dies_once(*args: Any, **kwargs: Any) -> bool:
        monkeypatch.setattr(worker, "submit", submit)
        raise ConnectionResetError("the process died here")

    monkeypatch.setattr(worker, "submit", dies_once)
    activity = payload("personal_message", door.connector, text="회의실 예약 방법 알려 주세요")

    died, _ = await door.post(activity)
    again, _ = await door.post(activity)
    await door.settle()

    assert died >= 500
    assert again == 200
    (final,) = door.connector.messages
    assert final.text.startswith("네, 확인했어요.")
    assert len(door.llm.calls) == 1


async def test_throttling_and_gateway_errors_are_retried(door: Door) -> None:
    def is_message(body: dict[str, object]) -> bool:
        return body.get("type") == "message"

    door.connector.fail(429, retry_after="0", when=is_message)
    door.connector.fail(502, when=is_message)
    door.connector.fail(412, when=is_message)

    await door.post(payload("channel_thread_mention", door.connector))
    await door.settle()

    assert len(door.connector.messages) == 1
    assert door.connector.attempts == len(door.connector.received) + 3


async def test_an_answer_that_cannot_be_delivered_is_logged_not_raised(
    door: Door, caplog: pytest.LogCaptureFixture
) -> None:
    door.connector.fail(502, times=10, when=lambda body: body.get("type") == "message")

    status, _ = await door.post(payload("channel_thread_mention", door.connector))
    await door.settle()

    assert status == 200
    assert door.connector.messages == []
    assert "answer not delivered to Teams: ConnectorError" in caplog.text


async def test_the_same_message_id_in_two_chats_is_two_messages(door: Door) -> None:
    first = payload("personal_message", door.connector, text="안녕하세요")
    other_chat = {"id": "a:another-personal-chat", "conversationType": "personal"}
    second = payload("personal_message", door.connector, text="안녕하세요", conversation=other_chat)

    await door.post(first)
    await door.post(second)
    await door.settle()

    assert sorted(m.conversation for m in door.connector.messages) == sorted(
        [first["conversation"]["id"], "a:another-personal-chat"]
    ), "Teams message ids are timestamps: unique per chat, not per tenant"


async def test_a_proactive_reply_is_authenticated_too(connector: BotConnector, llm: ScriptedLLM) -> None:
    gate = held(llm)
    activity = payload("channel_thread_mention", connector)
    app_id = bot_app_id(activity)
    async with (
        TokenIssuer() as issuer,
        run_door(connector, llm, app_id=app_id, issuer=issuer, deadline=0.2) as door,
    ):
        token = issuer.token(audience=app_id, service_url=connector.service_url)
        status, _ = await door.post(activity, token=token)
        gate.set()
        (reply,) = await connector.wait_for(1)
        await door.settle()

    assert status == 200
    assert reply.authorization == f"Bearer {ACCESS_TOKEN}"
    assert reply.reply_to == "1759944781430"
