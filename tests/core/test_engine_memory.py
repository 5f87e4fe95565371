"""Long conversations on the real stores: bounded prompts, rolling summaries off the user's wait."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.engine import Engine
from core.memory import Store
from core.persona import load_personas
from core.prompt import build_prompt, prompt_tokens
from core.types import ChatMessage, ConversationKey, Inbound, Turn
from tests.support.fakes import ScriptedLLM

BOTS = Path(__file__).resolve().parents[2] / "bots"
NOW = datetime(2026, 9, 21, 5, 10, tzinfo=UTC)
KEY = ConversationKey(platform="slack", tenant="T1", conversation="D-minsu")
PERSONAS = load_personas(BOTS)
PERSONA = PERSONAS["default"]

# Facts stated along the way; the scripted summariser keeps every line that holds one.
FACTS = {
    1: "기록: 프로젝트 코드명은 은하수이고 예산은 1,250만 원이에요.",
    57: "기록: 마감은 11월 14일 금요일로 정했어요.",
    133: "기록: 담당자는 재무팀 김민수 과장이에요.",
}


def question(turn: int) -> str:
    return FACTS.get(turn, f"{turn}번째 질문이에요. 다음 분기 보고서 초안의 구성을 어떻게 잡으면 좋을까요?")


def answer(messages: Sequence[ChatMessage]) -> str:
    # A realistic answer of about 150 tokens, different for every turn.
    return (
        f"질문({len(messages[-1].content)}자)에 대해 말씀드릴게요. "
        "보고서는 요약, 현황, 분석, 제안 순서로 구성하면 읽는 사람이 핵심을 빠르게 파악할 수 있어요. "
        "요약에는 결론과 요청 사항을 세 줄 이내로 적고, 현황에는 지난 분기 실적과 목표 대비 차이를 "
        "표로 정리하세요. 분석에서는 차이가 생긴 원인을 두세 가지로 나누어 근거와 함께 설명하고, "
        "제안에는 다음 분기에 할 일과 담당, 기한을 분명히 적어 주세요. 필요하면 초안을 함께 "
        "다듬어 드릴게요."
    )


def keep_facts(messages: Sequence[ChatMessage]) -> str:
    """A summariser that keeps every fact of the previous summary and of the folded talk."""
    body = messages[-1].content
    return (
        "\n".join(dict.fromkeys(f"- {fact}" for fact in re.findall(r"기록: [^\n]*", body))) or "- 보고서 논의"
    )


def engine_on(store: Store, llm: ScriptedLLM, summarizer: ScriptedLLM) -> Engine:
    return Engine(
        store=store, llm=llm, summary_llm=summarizer, personas=PERSONAS, default_model="m", clock=lambda: NOW
    )


def say(text: str, turn: int) -> Inbound:
    return Inbound(key=KEY, message_id=f"m{turn}", user_id="U-minsu", user_name="김민수", text=text)


async def test_a_200_turn_conversation_keeps_its_prompt_bounded_and_its_facts(store: Store) -> None:
    llm, summarizer = ScriptedLLM(answer), ScriptedLLM(keep_facts)
    engine = engine_on(store, llm, summarizer)
    sizes: list[int] = []
    for turn in range(1, 201):
        await engine.respond(say(question(turn), turn))
        sizes.append(prompt_tokens(llm.calls[-1]))
        await engine.settle()  # deterministic: each turn sees the summaries of the turns before
    await engine.close()

    at_20 = sizes[19]
    assert max(sizes[19:]) <= 1.5 * at_20, sizes
    last_user = Turn(role="user", text=question(200), at=0.0)
    frame = prompt_tokens(build_prompt(PERSONA, [], last_user, now=NOW, group=False))
    header = 16  # "앞선 대화 요약:" and the blank line around it
    assert sizes[199] <= frame + PERSONA.summary_tokens + PERSONA.history_tokens + header
    system = llm.calls[-1][0].content
    for fact in FACTS.values():
        assert fact in system  # turn 1's fact, 199 turns later, through the summary
    assert (await store.summary(KEY)).text.count("기록:") == len(FACTS)
    assert len(await store.history(KEY, limit=1000)) == 200  # the store's cap
    # About one summary per half window of talk, never one per turn.
    assert 5 <= len(summarizer.calls) <= 60


async def test_a_slow_summariser_never_slows_an_answer(store: Store) -> None:
    llm, summarizer = ScriptedLLM(answer), ScriptedLLM(keep_facts)
    summarizer.gate = asyncio.Event()  # the summariser hangs until released
    engine = engine_on(store, llm, summarizer)
    async with asyncio.timeout(10):  # a summary awaited inside stream() would hang here
        for turn in range(1, 41):
            assert "보고서는 요약" in await engine.respond(say(question(turn), turn))
        await summarizer.called()
    assert len(llm.calls) == 40
    assert len(summarizer.calls) == 1  # one run per conversation at a time, still in flight
    assert (await store.summary(KEY)).text == ""
    summarizer.gate.set()
    await engine.settle()
    assert FACTS[1] in (await store.summary(KEY)).text
    await engine.respond(say("이어서 질문이에요", 41))
    assert FACTS[1] in llm.calls[-1][0].content  # the next turn uses the summary that now exists
    await engine.close()


async def test_close_cancels_a_hung_summariser(store: Store) -> None:
    llm, summarizer = ScriptedLLM(answer), ScriptedLLM(keep_facts)
    summarizer.gate = asyncio.Event()
    engine = engine_on(store, llm, summarizer)
    for turn in range(1, 41):
        await engine.respond(say(question(turn), turn))
    await summarizer.called()
    await engine.close(timeout=0.01)
    assert (await store.summary(KEY)).text == ""
    await engine.respond(say("닫힌 뒤의 질문", 41))  # answers go on; no new background work starts
    assert len(summarizer.calls) == 1
