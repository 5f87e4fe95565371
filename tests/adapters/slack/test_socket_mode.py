"""Socket Mode: the same door over a WebSocket, for companies without a public URL."""

from __future__ import annotations

from tests.adapters.slack.conftest import payload, running_door

MENTION = "slack_event_app_mention_bolt.json"
THREAD = "1595926230.009600"


async def test_events_over_socket_mode_are_acked_and_answered_once() -> None:
    async with running_door(app_token="xapp-1-test") as door:
        assert door.status == "on (Socket Mode; events also at /slack/events)"
        await door.api.wait_connected()
        mention = payload(MENTION)
        envelope = await door.api.push(mention)
        assert await door.api.wait_for_ack(envelope) == {"envelope_id": envelope}
        await door.api.wait_for("chat.stopStream")
        retry = await door.api.push(mention, retry_attempt=1)
        await door.api.wait_for_ack(retry)
        await door.settle()
        [message] = door.api.thread("C111", THREAD)
        assert message.text == "네, **확인**했어요."
        assert len(door.llm.calls) == 1
        assert door.api.called("apps.connections.open")


async def test_slash_commands_over_socket_mode() -> None:
    async with running_door(app_token="xapp-1-test") as door:
        await door.api.wait_connected()
        form = {
            "command": "/dari",
            "text": "도움말",
            "channel_id": "D111",
            "user_id": "W222",
            "team_id": "T111",
        }
        envelope = await door.api.push(form, kind="slash_commands")
        await door.api.wait_for_ack(envelope)
        await door.api.wait_for("chat.postEphemeral")
        await door.settle()
        assert door.api.ephemerals[0]["text"].startswith("저는 다리예요.")
