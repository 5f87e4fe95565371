"""The /dari slash command: help and reset, answered ephemerally in Korean."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from adapters.slack.messages import slack_say
from core.messages import say
from core.types import ConversationKey, Turn
from tests.adapters.slack.conftest import Door

FORM = "application/x-www-form-urlencoded"


def command(door: Door, text: str, *, channel: str = "D111", trigger: str = "13345224609.738474920") -> str:
    return urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T111",
            "team_domain": "dari-test",
            "enterprise_id": "E111",
            "channel_id": channel,
            "channel_name": "directmessage",
            "user_id": "W222",
            "user_name": "minsu",
            "command": "/dari",
            "text": text,
            "response_url": door.api.response_url,
            "trigger_id": trigger,
        }
    )


@pytest.mark.parametrize("text", ["help", "도움말", ""])
async def test_help_is_ephemeral_and_korean(door: Door, text: str) -> None:
    reply = await door.post(command(door, text), content_type=FORM)
    assert (reply.status, reply.text) == (200, "")
    await door.settle()
    [ephemeral] = door.api.ephemerals
    assert (ephemeral["channel"], ephemeral["user"]) == ("D111", "W222")
    assert ephemeral["text"].startswith("저는 다리예요.")
    assert not door.api.messages and not door.llm.calls


@pytest.mark.parametrize("text", ["reset", "초기화"])
async def test_reset_in_a_dm_clears_that_conversation(door: Door, text: str) -> None:
    key = ConversationKey("slack", "E111:T111", "D111")
    await door.store.append(key, [Turn(role="user", text="기억해 줘", at=1.0, user_id="W222")], retention=60)
    await door.post(command(door, text), content_type=FORM)
    await door.settle()
    assert not door.store.turns.get(key.id)
    assert door.api.ephemerals[0]["text"] == say("reset_done", lang="ko")


async def test_reset_in_a_channel_explains_threads(door: Door) -> None:
    await door.post(command(door, "reset", channel="C111"), content_type=FORM)
    await door.settle()
    assert door.api.ephemerals[0]["text"] == slack_say("reset_in_channel", lang="ko")


async def test_when_the_bot_is_not_in_the_channel_the_response_url_answers(door: Door) -> None:
    door.api.fail("chat.postEphemeral", "channel_not_found")
    await door.post(command(door, "help", channel="C999"), content_type=FORM)
    await door.settle()
    [sent] = door.api.ephemerals
    assert sent["response_type"] == "ephemeral" and sent["text"].startswith("저는 다리예요.")
