"""The engine under the job queue: accept before the ack, answer once accepted, replay after a crash."""

from __future__ import annotations

from tests.core.test_engine import key, make_engine, message
from tests.support.fakes import ScriptedLLM


async def test_a_message_is_accepted_once() -> None:
    engine, store = make_engine(ScriptedLLM("답"))
    assert await engine.accept(message("질문", "m1"))
    assert not await engine.accept(message("질문", "m1"))
    assert await engine.accept(message("질문", "m1", conv="c2"))  # ids are unique per chat only
    assert len(store.claims) == 2


async def test_an_accepted_message_is_answered_without_a_second_claim() -> None:
    llm = ScriptedLLM("답이에요")
    engine, _ = make_engine(llm)
    inbound = message("질문", "m1")
    assert await engine.accept(inbound)
    assert await engine.respond(inbound, accepted=True) == "답이에요"
    assert await engine.respond(inbound) == ""  # the door that did not accept it first sees a duplicate


async def test_a_job_run_again_after_a_crash_gets_the_stored_answer_back() -> None:
    llm = ScriptedLLM("처음 만든 답이에요")
    engine, store = make_engine(llm)
    inbound = message("질문", "m1")
    first = await engine.respond(inbound, accepted=True)
    llm_again = ScriptedLLM("다른 답")
    engine_again, _ = make_engine(llm_again, store)  # another process, the same store
    assert await engine_again.respond(inbound, accepted=True) == first
    assert llm_again.calls == []  # no second LLM call
    assert len(store.turns[key().id]) == 2  # and no second write
    assert await engine_again.respond(message("다음 질문", "m2"), accepted=True) == "다른 답"
