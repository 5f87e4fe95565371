"""Teams activities to core types: keys, mentions, installs, feedback, validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.teams.translate import (
    MalformedActivity,
    bot_was_added,
    clean_text,
    conversation_key,
    conversation_kind,
    mentions_bot,
    parse_activity,
    to_feedback,
    to_inbound,
)
from core.types import ConversationKey

PAYLOADS = Path(__file__).parent / "payloads"


def load(name: str, **fields: Any) -> dict[str, Any]:
    activity: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    activity.update(fields)
    return activity


def test_a_personal_message_is_direct_and_keyed_by_tenant_and_chat() -> None:
    inbound = to_inbound(parse_activity(load("personal_message")))

    assert inbound.key == ConversationKey(
        platform="teams",
        tenant="72f988bf-86f1-41af-91ab-2d7cd011db47",
        conversation=load("personal_message")["conversation"]["id"],
    )
    assert inbound.is_direct
    assert inbound.message_id == "1485983408511"
    assert inbound.user_id == "7faf8ab2-3d56-4244-b585-20c8a42ed2b8", (
        "the Entra object id, stable across bots"
    )
    assert inbound.user_name == "Megan Bowen"
    assert inbound.text == "Hello Teams TestBot.Sending bold-italic rich text"


def test_a_channel_thread_mention_is_keyed_by_thread_and_loses_the_bot_mention() -> None:
    activity = parse_activity(load("channel_thread_mention"))
    inbound = to_inbound(activity)

    assert conversation_kind(activity) == "channel"
    assert mentions_bot(activity)
    assert inbound.key.conversation == "19:6848757105754c8981c67612732d9aa7@thread.tacv2"
    assert inbound.key.thread == "1759881511856"
    assert inbound.key.tenant == "50612dbb-0237-4969-b378-8d42590f9c00"
    assert not inbound.is_direct
    assert inbound.text == "reply to thread"
    assert inbound.user_name == "rido"


def test_other_mentions_stay_as_plain_names() -> None:
    raw = load("channel_thread_mention")
    raw["text"] = "<at>ridotest</at> <at>김민수</at> 님이 올린\n보고서를   요약해 주세요"
    raw["entities"] = [
        *raw["entities"],
        {"type": "mention", "text": "<at>김민수</at>", "mentioned": {"id": "29:minsu", "name": "김민수"}},
    ]

    assert clean_text(parse_activity(raw)) == "김민수 님이 올린\n보고서를 요약해 주세요"


def test_the_bot_is_found_by_its_mention_entity_not_by_the_text() -> None:
    raw = load("channel_thread_mention", text="<at>ridotest</at> 안녕하세요")
    raw["entities"] = [e for e in raw["entities"] if e["type"] != "mention"]
    raw["entities"].append({"type": "mention", "text": "<at>다른 봇</at>", "mentioned": {"id": "28:other"}})

    assert not mentions_bot(parse_activity(raw))


def test_a_mention_by_bare_app_id_counts() -> None:
    raw = load("channel_thread_mention")
    raw["entities"][0]["mentioned"]["id"] = "0b6fe6d1-fece-44f7-9a48-56465e2d5ab8"

    assert mentions_bot(parse_activity(raw))


def test_a_group_chat_without_conversation_type_is_recognised_by_is_group() -> None:
    raw = load("personal_message", conversation={"id": "19:abc@thread.v2", "isGroup": True})

    assert conversation_kind(parse_activity(raw)) == "groupChat"
    assert conversation_key(parse_activity(raw)).thread == ""


def test_the_tenant_falls_back_to_the_conversation() -> None:
    raw = load("channel_thread_mention")
    del raw["channelData"]

    assert conversation_key(parse_activity(raw)).tenant == "50612dbb-0237-4969-b378-8d42590f9c00"


@pytest.mark.parametrize(
    ("name", "added"),
    [
        ("conversation_update_bot_added_team", True),
        ("conversation_update_bot_added_personal", True),
        ("conversation_update_member_added", False),
    ],
)
def test_bot_was_added_only_when_the_bot_itself_joins(name: str, added: bool) -> None:
    assert bot_was_added(parse_activity(load(name))) is added


def test_feedback_reads_the_json_form_teams_sends() -> None:
    feedback = to_feedback(parse_activity(load("feedback_invoke")))

    assert feedback is not None
    assert feedback.reaction == "dislike"
    assert feedback.text == "010-1234-5678로 연락 주세요. 답이 틀렸어요"
    assert feedback.answer_id == "1767765488332"
    assert feedback.key.tenant == "56653e9d-2158-46ee-90d7-675c39642038"


@pytest.mark.parametrize(
    ("form", "text"),
    [("좋아요", "좋아요"), ({"feedbackText": " 빨라요 "}, "빨라요"), ('{"other": 1}', ""), (None, "")],
)
def test_feedback_text_in_every_shape(form: object, text: str) -> None:
    value = {"actionName": "feedback", "actionValue": {"reaction": "like", "feedback": form}}
    feedback = to_feedback(parse_activity(load("feedback_invoke", value=value)))

    assert feedback is not None
    assert feedback.text == text


@pytest.mark.parametrize(
    "value",
    [None, "like", {"actionName": "other"}, {"actionName": "feedback", "actionValue": {"reaction": "meh"}}],
)
def test_malformed_feedback_is_none(value: object) -> None:
    assert to_feedback(parse_activity(load("feedback_invoke", value=value))) is None


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ([], "JSON object"),
        ({"type": "message"}, "serviceUrl"),
        (load("personal_message", type=""), "type"),
        (load("personal_message", id=1485983408511), "id"),
        (load("personal_message", conversation="a:1"), "conversation"),
        (load("personal_message", conversation={"conversationType": "personal"}), "conversation.id"),
        (load("personal_message", serviceUrl="file:///etc/passwd"), "serviceUrl"),
        (load("personal_message", entities=["mention"]), "entities"),
        (load("conversation_update_member_added", membersAdded=[{"id": 7}]), "membersAdded"),
    ],
)
def test_malformed_activities_name_the_field(body: object, where: str) -> None:
    with pytest.raises(MalformedActivity, match=where):
        parse_activity(body)


def test_a_message_without_an_id_is_malformed() -> None:
    raw = load("personal_message")
    del raw["id"]

    with pytest.raises(MalformedActivity, match="a message needs an id"):
        parse_activity(raw)
    assert parse_activity({**load("conversation_update_member_added"), "id": None}).id is None
