"""One answer all the way over the wire: signed Slack request in, the real openai client to an
OpenAI-compatible server, the answer streamed out to the Slack Web API stand-in."""

from __future__ import annotations

from core.llm.openai import OpenAIChat
from core.messages import say
from tests.adapters.slack.conftest import payload, running_door
from tests.support.openai_server import FakeOpenAI

THREAD = "1595926230.009600"


async def test_mention_answered_by_a_real_llm_client_over_http() -> None:
    async with FakeOpenAI(answer="사내 **연차**는 15일부터 시작해요.") as model:
        llm = OpenAIChat(api_key="test", base_url=model.base_url, max_retries=0)
        try:
            async with running_door(llm=llm) as door:
                await door.post(payload("slack_event_app_mention_bolt.json", text="<@W111> 연차 며칠이에요?"))
                await door.settle()
                [message] = door.api.thread("C111", THREAD)
                assert message.text == "사내 **연차**는 15일부터 시작해요." and message.streamed

                model.break_stream(after=2)
                follow_up = {"thread_ts": THREAD, "ts": "1595926300.000300", "text": "반차는요?"}
                await door.post(
                    payload("slack_event_message_channel_thread_reply.json", channel="C111", **follow_up)
                )
                await door.settle()
                broken = door.api.thread("C111", THREAD)[-1]
                assert broken.text.endswith("\n\n" + say("llm_failed_midway", lang="ko"))
                assert not broken.streaming
        finally:
            await llm.close()
        prompt = model.calls[-1].body
        assert prompt is not None and prompt["messages"][-1]["content"] == "[W222] 반차는요?"
