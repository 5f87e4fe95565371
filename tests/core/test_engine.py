"""Engine scenarios with an in-memory store and a scripted LLM."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.engine import Engine
from core.errors import ConfigError, LLMRateLimited, LLMUnavailable
from core.memory.base import MAX_TURN_CHARS
from core.persona import load_personas
from core.types import ConversationKey, Inbound
from tests.support.fakes import InMemoryStore, ScriptedLLM

BOTS = Path(__file__).resolve().parents[2] / "bots"
NOW = datetime(2026, 9, 21, 5, 10, tzinfo=UTC)  # 2026년 9월 21일 (월) 오후 2:10 KST


def key(conversation: str = "c1", *, tenant: str = "t1", platform: str = "slack") -> ConversationKey:
    return ConversationKey(platform=platform, tenant=tenant, conversation=conversation)


def message(text: str, mid: str, *, conv: str = "c1", user: str = "u1", **kw: object) -> Inbound:
    return Inbound(key=key(conv), message_id=mid, user_id=user, text=text, **kw)  # type: ignore[arg-type]


def make_engine(llm: ScriptedLLM | None, store: InMemoryStore | None = None) -> tuple[Engine, InMemoryStore]:
    store = store or InMemoryStore()
    engine = Engine(
        store=store, llm=llm, personas=load_personas(BOTS), default_model="gpt-test", clock=lambda: NOW
    )
    return engine, store


async def test_answers_stream_and_are_remembered() -> None:
    llm = ScriptedLLM("안녕하세요, 반가워요!")
    engine, store = make_engine(llm)
    deltas = [d async for d in engine.stream(message("안녕", "m1"))]
    assert len(deltas) > 1
    assert "".join(deltas) == "안녕하세요, 반가워요!"
    turns = store.turns[key().id]
    assert [(t.role, t.text) for t in turns] == [("user", "안녕"), ("assistant", "안녕하세요, 반가워요!")]
    system = llm.calls[0][0].content
    assert "2026년 9월 21일 (월) 오후 2:10" in system
    assert "추석" in system  # 2026-09-24..26, computed in code


async def test_a_duplicate_is_answered_once_and_costs_no_llm_call() -> None:
    llm = ScriptedLLM("답")
    engine, _ = make_engine(llm)
    first = await engine.respond(message("질문", "same-id"))
    again = await engine.respond(message("질문", "same-id"))
    assert (first, again) == ("답", "")
    assert len(llm.calls) == 1


async def test_a_duplicate_arriving_while_the_first_is_in_flight_gets_nothing() -> None:
    llm = ScriptedLLM("답")
    llm.gate = asyncio.Event()
    engine, _ = make_engine(llm)
    first = asyncio.create_task(engine.respond(message("질문", "m1")))
    second = asyncio.create_task(engine.respond(message("질문", "m1")))
    await asyncio.sleep(0)  # let both reach the engine
    llm.gate.set()
    assert list(await asyncio.gather(first, second)) == ["답", ""]
    assert len(llm.calls) == 1


async def test_one_conversation_is_strictly_sequential() -> None:
    order: list[str] = []

    def answer(messages: object) -> str:
        text = messages[-1].content  # type: ignore[index]
        order.append(text)
        return f"re:{text}"

    llm = ScriptedLLM(answer)
    llm.gate = asyncio.Event()
    engine, store = make_engine(llm)
    tasks = [asyncio.create_task(engine.respond(message(f"q{i}", f"m{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    assert len(llm.calls) == 1  # the others wait for their turn
    llm.gate.set()
    assert await asyncio.gather(*tasks) == [f"re:q{i}" for i in range(5)]
    assert order == [f"q{i}" for i in range(5)]
    # each prompt saw every earlier turn
    assert [len(call) for call in llm.calls] == [2, 4, 6, 8, 10]
    assert len(store.turns[key().id]) == 10


async def test_different_conversations_run_concurrently() -> None:
    llm = ScriptedLLM("답")
    llm.gate = asyncio.Event()
    engine, _ = make_engine(llm)
    tasks = [asyncio.create_task(engine.respond(message("질문", "m", conv=f"c{i}"))) for i in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(llm.calls) == 5  # all five are in the LLM at once
    llm.gate.set()
    assert await asyncio.gather(*tasks) == ["답"] * 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("초기화", "대화를 초기화했어요"),
        ("/reset", "this conversation starts over"),
        ("도움말", "명령어"),
        ("/help", "Commands"),
        ("잊어줘", "모두 지웠어요"),
        ("/forget", "erased everything"),
        ("기억해 줘: 저는 재무팀이에요", "기억했어요: 저는 재무팀이에요"),
        ("/remember I work in finance", "I'll remember: I work in finance"),
        ("기억 목록", "아직 기억하고 있는 내용이 없어요"),
        ("/memory", "I don't remember anything"),
        ("기억 삭제 1", "1번 내용이 없어요"),
        ("/memory delete 1", "There is no item 1"),
    ],
)
async def test_commands_in_korean_and_english(text: str, expected: str) -> None:
    llm = ScriptedLLM("답")
    engine, _ = make_engine(llm)
    assert expected in await engine.respond(message(text, "m1"))
    assert llm.calls == []


async def test_reset_clears_the_conversation_and_forget_erases_the_user() -> None:
    llm = ScriptedLLM("답")
    engine, store = make_engine(llm)
    await engine.respond(message("기억해 주세요: 은하수", "m1"))
    await engine.respond(message("초기화", "m2"))
    assert store.turns[key().id] == []
    await engine.respond(message("제 사번은 K-2041이에요", "m3", conv="c1"))
    await engine.respond(message("다른 방에서도 말해요", "m4", conv="c2"))
    await engine.respond(message("잊어줘", "m5", conv="c1"))
    remaining = [t for turns in store.turns.values() for t in turns if t.user_id == "u1"]
    assert remaining == []


async def test_personal_identifiers_are_masked_before_the_llm_and_memory() -> None:
    llm = ScriptedLLM("확인했어요")
    engine, store = make_engine(llm)
    await engine.respond(message("제 번호는 010-1234-5678이고 주민번호는 900101-1234568이에요", "m1"))
    prompt = llm.calls[0][-1].content
    stored = store.turns[key().id][0].text
    for text in (prompt, stored):
        assert "010-1234-5678" not in text
        assert "900101-1234568" not in text
        assert "[전화번호]" in text
        assert "[주민등록번호]" in text


async def test_nfd_input_is_normalised() -> None:
    import unicodedata

    llm = ScriptedLLM("네")
    engine, _ = make_engine(llm)
    await engine.respond(message(unicodedata.normalize("NFD", "안녕하세요"), "m1"))
    assert llm.calls[0][-1].content == "안녕하세요"


async def test_llm_failure_becomes_a_korean_apology_and_is_not_stored() -> None:
    llm = ScriptedLLM("답")
    llm.fail_with = LLMUnavailable("down")
    engine, store = make_engine(llm)
    answer = await engine.respond(message("질문", "m1"))
    assert answer.startswith("죄송해요")
    assert store.turns[key().id] == []


async def test_rate_limit_apology_says_when_to_try_again() -> None:
    llm = ScriptedLLM("답")
    llm.fail_with = LLMRateLimited("busy", retry_after=20)
    engine, _ = make_engine(llm)
    assert "20초" in await engine.respond(message("질문", "m1"))


async def test_a_failure_midway_ends_with_an_apology_line_and_keeps_the_partial_answer() -> None:
    llm = ScriptedLLM("가나다라마바사아자차카타파하", chunk=2)
    llm.fail_with = LLMUnavailable("cut")
    llm.fail_after = 3
    engine, store = make_engine(llm)
    answer = await engine.respond(message("질문", "m1"))
    assert answer.startswith("가나다라마바")
    assert answer.endswith("다시 질문해 주시면 이어서 도와드릴게요.)")
    assert store.turns[key().id][1].text == "가나다라마바"


async def test_english_messages_get_english_notices() -> None:
    llm = ScriptedLLM("answer")
    llm.fail_with = LLMUnavailable("down")
    engine, _ = make_engine(llm)
    assert (await engine.respond(message("What is our travel policy?", "m1"))).startswith("Sorry")


async def test_without_an_llm_users_are_told_it_is_not_configured() -> None:
    engine, _ = make_engine(None)
    assert "AI 모델이 연결되지 않아" in await engine.respond(message("안녕", "m1"))
    assert not engine.llm_configured


async def test_empty_text_and_empty_llm_answers_get_a_clear_message() -> None:
    llm = ScriptedLLM("")
    engine, store = make_engine(llm)
    assert "메시지 내용을 확인하지 못했어요" in await engine.respond(message("   ", "m1"))
    assert (await engine.respond(message("질문", "m2"))).startswith("죄송해요")
    assert store.turns[key().id] == []


async def test_group_prompts_name_the_speaker() -> None:
    llm = ScriptedLLM("네")
    engine, _ = make_engine(llm)
    await engine.respond(message("회의 언제죠?", "m1", user="U1", user_name="김민수", is_direct=False))
    assert llm.calls[0][-1].content == "[김민수] 회의 언제죠?"


async def test_hapsyo_bot_speaks_formally() -> None:
    llm = ScriptedLLM("답")
    engine, _ = make_engine(llm)
    formal = replace(message("초기화", "m1"), key=replace(key(), bot="formal"))
    assert await engine.respond(formal) == "대화를 초기화했습니다. 새로운 주제로 말씀해 주십시오."


def test_a_default_bot_is_required() -> None:
    personas = load_personas(BOTS)
    del personas["default"]
    with pytest.raises(ConfigError):
        Engine(store=InMemoryStore(), llm=None, personas=personas, default_model="m")


async def test_a_huge_message_is_answered_whole_but_stored_cut() -> None:
    llm = ScriptedLLM("네, 읽었어요.")
    engine, store = make_engine(llm)
    text = " ".join(["회의록 원문"] * 1400)  # 9,799 characters: over the storage cut, under the prompt cut
    await engine.respond(message(text, "m1"))
    assert llm.calls[0][-1].content == text
    stored = store.turns[key().id][0].text
    assert len(stored) <= MAX_TURN_CHARS + 2 and text.startswith(stored.removesuffix(" …"))
