"""adapters.slack.translate and adapters.slack.envelope over recorded Slack payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.slack.envelope import check, parse_body
from adapters.slack.translate import (
    AssistantThread,
    SlackMessage,
    command_word,
    plain_text,
    tenant_of,
    thread_title,
    to_assistant_thread,
    to_command,
    to_inbound,
    to_slack_message,
)
from core.types import ConversationKey
from tests.adapters.slack.conftest import PAYLOADS, sign

BOT_USER, BOT_ID = "W111", "BZYBOTHED"


def recorded(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return body


def message(name: str, **event: Any) -> SlackMessage | None:
    body = recorded(name)
    body["event"].update(event)
    return to_slack_message(body, bot_user_id=BOT_USER, bot_id=BOT_ID)


def test_app_mention_is_answered_in_a_new_thread_under_it() -> None:
    found = message("slack_event_app_mention_bolt.json")
    assert found == SlackMessage(
        kind="mention",
        event_id="Ev111",
        tenant="E111:T111",
        team="T111",
        channel="C111",
        ts="1595926230.009600",
        thread_ts="1595926230.009600",
        user="W222",
        text="Hi there!",
    )
    inbound = to_inbound(found, bot="default", user_name="김민수")
    assert inbound.key == ConversationKey("slack", "E111:T111", "C111", "1595926230.009600", "default")
    assert (inbound.message_id, inbound.user_id, inbound.user_name) == (
        "C111:1595926230.009600",
        "W222",
        "김민수",
    )
    assert inbound.is_direct is False


def test_mention_inside_a_thread_answers_in_that_thread() -> None:
    found = message("slack_event_app_mention_bolt.json", thread_ts="1595926000.000100")
    assert found is not None and found.thread_ts == "1595926000.000100"


def test_org_install_keeps_enterprise_and_team_apart() -> None:
    body = recorded("slack_event_app_mention_org_install.json")
    assert tenant_of(body) == "E111:T111"
    body.pop("team_id")
    assert tenant_of(body) == "E111"
    assert tenant_of({"team_id": "T9"}) == "T9"
    assert tenant_of({"authorizations": [{"enterprise_id": "E1", "team_id": "T1"}]}) == "E1:T1"


def test_dm_in_an_assistant_thread_is_a_direct_message_in_that_thread() -> None:
    found = message("slack_event_message_im_assistant_thread.json")
    assert found is not None
    assert (found.kind, found.channel, found.thread_ts, found.text) == (
        "direct",
        "D111",
        "1726133698.626339",
        "When Slack was released?",
    )
    assert to_inbound(found, bot="default").key.thread == "1726133698.626339"


def test_plain_dm_is_the_users_own_conversation_without_thread() -> None:
    found = message("slack_event_message_im_assistant_thread.json", thread_ts=None)
    assert found is not None and found.kind == "direct" and found.thread_ts == ""
    inbound = to_inbound(found, bot="default")
    assert inbound.is_direct and inbound.key == ConversationKey("slack", "E111:T111", "D111", "", "default")


def test_channel_thread_reply_is_a_follow_up_candidate() -> None:
    found = message("slack_event_message_channel_thread_reply.json")
    assert found is not None and (found.kind, found.thread_ts) == ("follow_up", "1726133698.626339")
    broadcast = message("slack_event_message_thread_broadcast.json")
    assert broadcast is not None and (broadcast.kind, broadcast.thread_ts) == (
        "follow_up",
        "1633663824.000500",
    )


def test_thread_reply_that_mentions_the_bot_is_a_mention_and_to_someone_else_is_ignored() -> None:
    to_bot = message("slack_event_message_channel_thread_reply.json", text="<@W111> 요약해 줘")
    assert to_bot is not None and (to_bot.kind, to_bot.text) == ("mention", "요약해 줘")
    assert message("slack_event_message_channel_thread_reply.json", text="<@W333> 확인 부탁해요") is None


def test_top_level_channel_chatter_is_ignored() -> None:
    assert message("slack_event_message_channel_user.json", user="W222") is None


@pytest.mark.parametrize(
    "name",
    [
        "slack_event_bot_message_classic.json",
        "slack_event_bot_message_other_app.json",
        "slack_event_bot_message_self.json",
        "slack_event_message_from_other_app_bot_id.json",
        "slack_event_message_changed_assistant_app_thread.json",
        "slack_event_message_changed_channel_thread.json",
        "slack_event_message_deleted.json",
        "slack_event_message_channel_user.json",  # written by the bot's own user
        "slack_event_reaction_added_by_self.json",
        "slack_event_assistant_thread_started_bolt.json",
    ],
)
def test_bots_edits_deletions_and_other_events_are_not_messages_to_answer(name: str) -> None:
    assert message(name) is None


def test_slackbot_and_join_messages_are_ignored() -> None:
    assert message("slack_event_message_im_assistant_thread.json", user="USLACKBOT") is None
    assert message("slack_event_message_im_assistant_thread.json", subtype="channel_join") is None


def test_wrong_types_read_as_absent() -> None:
    body = recorded("slack_event_app_mention_bolt.json")
    body["event"]["channel"] = ["C111"]
    assert to_slack_message(body, bot_user_id=BOT_USER, bot_id=BOT_ID) is None
    body["event"] = "app_mention"
    assert to_slack_message(body, bot_user_id=BOT_USER, bot_id=BOT_ID) is None
    assert to_assistant_thread({"event": {"type": "assistant_thread_started", "assistant_thread": 3}}) is None


def test_assistant_thread_started() -> None:
    assert to_assistant_thread(recorded("slack_event_assistant_thread_started_bolt.json")) == AssistantThread(
        event_id="Ev111", tenant="E111:T111", channel="D111", thread_ts="1726133698.626339", user="W222"
    )
    assert to_assistant_thread(recorded("slack_event_assistant_thread_context_changed_bolt.json")) is None


@pytest.mark.parametrize(
    ("markup", "plain"),
    [
        ("<@W111> Hi there!", "Hi there!"),
        ("<@W111|dari> 안녕", "안녕"),
        ("<@W222> 님 확인 부탁해요", "@W222 님 확인 부탁해요"),
        ("<@W222|minsu> 님", "@minsu 님"),
        ("<#C123|general> 채널", "#general 채널"),
        ("<!here> 공지", "@here 공지"),
        ("<!subteam^S1|@dev> 팀", "@dev 팀"),
        ("<https://example.com|예시> 참고", "예시 (https://example.com) 참고"),
        ("<https://example.com>", "https://example.com"),
        ("<mailto:a@b.kr|a@b.kr>", "a@b.kr"),
        ("a &lt; b &amp;&amp; c &gt; d", "a < b && c > d"),
        ("  여러   칸\n\n 줄  ", "여러 칸\n\n줄"),
    ],
)
def test_plain_text(markup: str, plain: str) -> None:
    assert plain_text(markup, {"W111"}) == plain


def test_slash_command_form() -> None:
    form = parse_body(recorded("slack_signing_test_vector.json")["body"], "application/x-www-form-urlencoded")
    assert form is not None and check(form).action == "dispatch"
    command = to_command(form)
    assert command is not None
    assert (command.tenant, command.channel, command.user, command.is_direct) == (
        "T1DC2JH3J",
        "G8PSS9T3V",
        "U2CERLKJA",
        False,
    )
    assert command.response_url.startswith("https://hooks.slack.com/commands/")
    assert to_command({"command": "/dari", "channel_id": "D1"}) is None


@pytest.mark.parametrize(
    ("text", "word"),
    [("", "도움말"), ("help", "도움말"), ("HELP ", "도움말"), ("도움말", "도움말"), ("reset", "초기화"),
     ("초기화", "초기화"), ("forget", "잊어줘"), ("뭐라고", "도움말")],
)  # fmt: skip
def test_command_words_are_korean(text: str, word: str) -> None:
    assert command_word(text) == word


def test_thread_title() -> None:
    assert thread_title("\n  회의록 요약해 주세요  \n두 번째 줄") == "회의록 요약해 주세요"
    long = thread_title("가" * 100)
    assert len(long) == 40 and long.endswith("…")
    assert thread_title("   ") == ""


def test_signature_matches_slacks_test_vector() -> None:
    vector = recorded("slack_signing_test_vector.json")
    body = vector["body"].encode()
    assert sign(vector["signing_secret"], vector["timestamp"], body) == vector["expected_signature"]


@pytest.mark.parametrize(
    "name",
    [
        "slack_event_app_mention_bolt.json",
        "slack_event_app_mention_org_install.json",
        "slack_event_assistant_thread_started_bolt.json",
        "slack_event_message_changed_assistant_app_thread.json",
        "slack_event_message_deleted.json",
        "slack_event_message_from_other_app_bot_id.json",
        "slack_event_message_thread_broadcast.json",
    ],
)
def test_recorded_events_pass_the_envelope_check(name: str) -> None:
    assert check(recorded(name)).action == "dispatch"


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ({"type": "url_verification", "token": "t", "challenge": "abc"}, "dispatch"),
        ({"type": "url_verification", "challenge": 5}, "reject"),
        ({"type": "url_verification", "challenge": "abc", "team": 5}, "reject"),
        ({"type": "event_callback", "event": {"type": "reaction_added", "user": 5}}, "ack"),
        ({"type": "app_rate_limited", "minute_rate_limited": 1518467820}, "ack"),
        ({"type": 5}, "reject"),
        ({}, "reject"),
        ({"type": "event_callback"}, "reject"),
        ({"type": "event_callback", "event": "app_mention"}, "reject"),
        ({"type": "event_callback", "event": {"type": "message", "user": 5}}, "reject"),
        ({"type": "event_callback", "event": {"type": "message", "message": {"user": {"id": 1}}}}, "reject"),
        ({"type": "event_callback", "event": {"type": "message"}, "authorizations": [{"team": 1}]}, "reject"),
        ({"type": "event_callback", "event": {"type": "message"}, "authorizations": "x"}, "reject"),
        ({"type": "event_callback", "event": {"type": "message", "hidden": "yes"}}, "reject"),
        ({"type": "event_callback", "event": {"type": "message"}, "team_id": ["T1"]}, "reject"),
        ({"command": "/dari", "text": "help"}, "dispatch"),
        ({"command": ""}, "reject"),
        ({"payload": "{}"}, "ack"),
    ],
)
def test_envelope_check(body: dict[str, Any], action: str) -> None:
    assert check(body).action == action


@pytest.mark.parametrize(
    ("raw", "content_type", "parsed"),
    [
        ('{"type": "x"}', "application/json", {"type": "x"}),
        ('{"type": "x"}', "text/plain", {"type": "x"}),
        ("[1, 2]", "application/json", None),
        ("{not json", "application/json", None),
        ("command=%2Fdari&text=", "application/x-www-form-urlencoded", {"command": "/dari", "text": ""}),
        ("hello", "text/plain", None),
    ],
)
def test_parse_body_reads_as_bolt_does(raw: str, content_type: str, parsed: dict[str, Any] | None) -> None:
    assert parse_body(raw, content_type) == parsed
