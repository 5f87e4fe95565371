"""1:1 chats over HTTP: every message is answered as a stream, or as one message without streaming."""

from __future__ import annotations

from adapters.teams.stream import Pacing
from tests.adapters.teams.conftest import Door, payload, run_door
from tests.support.botframework import BotConnector, stream_info
from tests.support.fakes import ScriptedLLM

ANSWER = "네, 확인했어요. **회의록 요약**은 아래와 같아요."
QUESTION = "어제 회의록 요약해 줘"


def korean_message(connector: BotConnector, **fields: object) -> dict[str, object]:
    return payload("personal_message", connector, text=QUESTION, **fields)


async def test_a_personal_message_streams_then_ends_with_one_final_message(door: Door) -> None:
    status, _ = await door.post(korean_message(door.connector))
    await door.settle()

    received = door.connector.received
    infos = [stream_info(r.body) for r in received]
    start, *updates, final = received
    assert status == 200
    assert infos[0] == {"type": "streaminfo", "streamType": "informative", "streamSequence": 1}
    assert start.type == "typing"
    assert start.text == "답변을 준비하고 있어요…"
    assert updates, "the scripted answer comes in several deltas"
    assert all(r.type == "typing" and ANSWER.startswith(r.text) for r in updates), "full text so far"
    assert [i["streamSequence"] for i in infos[1:-1] if i] == list(range(2, len(updates) + 2))
    assert {i["streamId"] for i in infos[1:] if i} == {"activity-1"}, "the id the start returned"
    assert final.type == "message"
    assert final.text == ANSWER
    assert infos[-1] == {"type": "streaminfo", "streamType": "final", "streamId": "activity-1"}
    assert final.body["textFormat"] == "markdown"
    assert final.body["channelData"] == {"feedbackLoopEnabled": True}
    assert len(door.connector.messages) == 1
    assert {r.reply_to for r in received} == {"1485983408511"}
    assert door.llm.calls[0][-1].content == QUESTION


async def test_a_client_without_streaming_gets_one_plain_message(door: Door) -> None:
    door.connector.refuse_streaming(403)

    status, _ = await door.post(korean_message(door.connector))
    await door.settle()

    assert status == 200
    assert [r.type for r in door.connector.received] == ["typing", "message"]
    (message,) = door.connector.messages
    assert message.text == ANSWER
    assert stream_info(message.body) is None
    assert message.body["channelData"] == {"feedbackLoopEnabled": True}


async def test_a_stream_teams_ends_midway_is_finished_as_a_plain_message(door: Door) -> None:
    door.connector.fail(
        403,
        code="ContentStreamNotAllowed",
        message="Content stream finished due to exceeded streaming time.",
        when=lambda body: (stream_info(body) or {}).get("streamSequence") == 3,
    )

    await door.post(korean_message(door.connector))
    await door.settle()

    (message,) = door.connector.messages
    assert message.text == ANSWER
    assert stream_info(message.body) is None
    assert not any((stream_info(r.body) or {}).get("streamSequence", 0) > 3 for r in door.connector.received)


async def test_a_stream_the_user_stopped_gets_nothing_more(door: Door) -> None:
    door.connector.fail(
        403,
        code="ContentStreamNotAllowed",
        message="Content stream was cancelled by user.",
        when=lambda body: (stream_info(body) or {}).get("streamSequence") == 2,
    )

    await door.post(korean_message(door.connector))
    await door.settle()

    assert door.connector.messages == []
    assert len(door.connector.received) == 1, "only the informative start"


async def test_a_long_answer_is_split_over_teams_message_size(connector: BotConnector) -> None:
    long_answer = "\n\n".join(f"{n}번째 항목을 정리했어요. " * 30 for n in range(10))
    async with run_door(
        connector,
        ScriptedLLM(long_answer, chunk=400),
        pacing=Pacing(stream_interval=0.0, message_limit=3_000),
    ) as door:
        await door.post(korean_message(connector))
        await door.settle()

    final, *rest = connector.messages
    assert (stream_info(final.body) or {}).get("streamType") == "final"
    assert rest, "the remainder follows as plain messages"
    assert all(len(m.text.encode("utf-16-le")) <= 3_000 for m in connector.messages)
    assert all(len(r.text.encode("utf-16-le")) <= 3_000 for r in connector.received), "updates too"
    assert "".join(m.text for m in connector.messages).replace("\n", "").replace(
        " ", ""
    ) == long_answer.replace("\n", "").replace(" ", "")


async def test_an_english_question_gets_english_progress(door: Door) -> None:
    await door.post(payload("personal_message", door.connector))
    await door.settle()

    assert door.connector.received[0].text == "Preparing your answer…"
