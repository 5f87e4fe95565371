"""conversationUpdate and invoke over HTTP: the install welcome and 👍/👎 feedback."""

from __future__ import annotations

import logging

import pytest

from adapters.metrics import METRICS
from adapters.teams.feedback import FEEDBACK_LOGGER
from tests.adapters.teams.conftest import Door, payload


async def test_installing_in_a_team_welcomes_the_channel_once(door: Door) -> None:
    install = payload("conversation_update_bot_added_team", door.connector)

    status, _ = await door.post(install)
    await door.post(install)  # redelivered
    await door.post({**install, "id": "f:another-delivery"})  # the same install announced again
    await door.settle()

    (welcome,) = door.connector.messages
    assert status == 200
    assert welcome.conversation == "19:efa9296d959346209fea44151c742e73@thread.skype"
    assert welcome.reply_to == "", "a new post in the channel, not a reply"
    assert welcome.text.startswith("안녕하세요, 사내 업무 도우미 다리예요.")
    assert "멘션(@다리)한 메시지에만 답변해요" in welcome.text
    assert "channelData" not in welcome.body, "no feedback buttons on a welcome"
    assert door.llm.calls == []


async def test_installing_in_a_personal_chat_welcomes_the_user(door: Door) -> None:
    await door.post(payload("conversation_update_bot_added_personal", door.connector))
    await door.settle()

    (welcome,) = door.connector.messages
    assert welcome.conversation == "***"
    assert "'도움말'이라고 보내 주시면" in welcome.text


async def test_other_members_joining_get_no_message(door: Door) -> None:
    status, _ = await door.post(payload("conversation_update_member_added", door.connector))
    await door.settle()

    assert status == 200
    assert door.connector.received == []


async def test_feedback_is_recorded_for_operators(door: Door, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=FEEDBACK_LOGGER)

    status, body = await door.post(payload("feedback_invoke", door.connector))

    registry = door.app[METRICS].registry
    (record,) = [r for r in caplog.records if r.name == FEEDBACK_LOGGER]
    assert (status, body) == (200, None), "Teams wants 200 with no body, and no message to the user"
    assert registry.get_sample_value("dari_teams_feedback_total", {"reaction": "dislike"}) == 1.0
    assert record.__dict__["reaction"] == "dislike"
    assert record.__dict__["answer_id"] == "1767765488332"
    assert record.__dict__["comment"] == "[전화번호]로 연락 주세요. 답이 틀렸어요", "identifiers masked"
    assert record.__dict__["conversation"].startswith("teams:default:56653e9d-2158-46ee-90d7-675c39642038:")
    assert door.connector.received == []


async def test_malformed_feedback_is_a_400(door: Door) -> None:
    bad = payload("feedback_invoke", door.connector, value={"actionName": "feedback", "actionValue": {}})

    status, body = await door.post(bad)

    assert status == 400
    assert body == {"error": {"code": "bad_request", "message": "not a feedback action"}}


async def test_an_unknown_invoke_is_refused_as_a_bad_request(door: Door) -> None:
    status, body = await door.post(payload("feedback_invoke", door.connector, name="composeExtension/query"))

    assert status == 400
    assert "error" in body
