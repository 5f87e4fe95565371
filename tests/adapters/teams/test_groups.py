"""Channels and group chats over HTTP: answer only when mentioned, in the thread, one memory per thread."""

from __future__ import annotations

from typing import Any

from tests.adapters.teams.conftest import Door, payload
from tests.support.botframework import BotConnector, stream_info

THREAD = "19:6848757105754c8981c67612732d9aa7@thread.tacv2;messageid=1759881511856"


def mention(connector: BotConnector, text: str, **fields: Any) -> dict[str, Any]:
    return payload("channel_thread_mention", connector, text=f"<at>ridotest</at> {text}", **fields)


def user_turns(door: Door, call: int) -> list[str]:
    return [m.content for m in door.llm.calls[call] if m.role == "user"]


async def test_a_channel_mention_gets_exactly_one_reply_in_its_thread(door: Door) -> None:
    status, _ = await door.post(payload("channel_thread_mention", door.connector))
    await door.settle()

    (reply,) = door.connector.messages
    assert status == 200
    assert reply.conversation == THREAD
    assert reply.reply_to == "1759944781430"
    assert reply.text == "네, 확인했어요. **회의록 요약**은 아래와 같아요."
    assert reply.body["textFormat"] == "markdown"
    assert reply.body["channelData"] == {"feedbackLoopEnabled": True}
    assert all(stream_info(r.body) is None for r in door.connector.received), "no streaming in channels"
    assert door.connector.received[0].type == "typing", "typing indicator before the answer"


async def test_the_llm_never_sees_at_markup_and_knows_who_spoke(door: Door) -> None:
    activity = mention(door.connector, "<at>김민수</at> 님 보고서를 요약해 주세요")
    activity["entities"].append(
        {"type": "mention", "text": "<at>김민수</at>", "mentioned": {"id": "29:minsu", "name": "김민수"}}
    )

    await door.post(activity)
    await door.settle()

    prompt = door.llm.calls[0]
    assert "<at>" not in "".join(m.content for m in prompt)
    assert user_turns(door, 0)[-1] == "[rido] 김민수 님 보고서를 요약해 주세요"


async def test_a_group_message_without_a_mention_is_ignored(door: Door) -> None:
    activity = payload("channel_thread_mention", door.connector, text="그냥 잡담이에요")
    activity["entities"] = [e for e in activity["entities"] if e["type"] != "mention"]

    status, _ = await door.post(activity)
    await door.settle()

    assert status == 200
    assert door.connector.received == []
    assert door.llm.calls == []


async def test_a_group_chat_mention_is_answered_without_streaming(door: Door) -> None:
    group_chat = {"id": "19:meeting_abc@thread.v2", "conversationType": "groupChat", "isGroup": True}
    await door.post(mention(door.connector, "일정 정리해 주세요", conversation=group_chat))
    await door.settle()

    (reply,) = door.connector.messages
    assert reply.conversation == "19:meeting_abc@thread.v2"
    assert stream_info(reply.body) is None


async def test_each_thread_has_its_own_memory(door: Door) -> None:
    await door.post(mention(door.connector, "첫 스레드의 비밀은 사과예요", id="m1"))
    await door.settle()
    other = {
        "id": "19:6848757105754c8981c67612732d9aa7@thread.tacv2;messageid=999",
        "conversationType": "channel",
    }
    await door.post(mention(door.connector, "다른 스레드예요", id="m2", conversation=other))
    await door.post(mention(door.connector, "같은 스레드예요", id="m3"))
    await door.settle()

    assert not any("사과" in turn for turn in user_turns(door, 1)), "another thread, another memory"
    assert any("사과" in turn for turn in user_turns(door, 2)), "the same thread remembers"


async def test_the_tenant_keeps_same_named_conversations_apart(door: Door) -> None:
    await door.post(mention(door.connector, "우리 회사 암호는 바나나", id="t1"))
    await door.settle()
    elsewhere = mention(door.connector, "암호가 뭐였죠?", id="t2")
    elsewhere["channelData"]["tenant"]["id"] = "another-tenant"
    await door.post(elsewhere)
    await door.settle()

    assert not any("바나나" in turn for turn in user_turns(door, 1))
