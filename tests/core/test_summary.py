"""The summariser on its own: when it folds, what it asks, and what it stores."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import LLMUnavailable
from core.persona import load_personas
from core.summary import MAX_FOLD_TOKENS, Summarizer, fold_point, summary_prompt
from core.tokens import count_tokens
from core.types import ChatMessage, ConversationKey, StoredTurn, Summary, Turn
from tests.support.fakes import InMemoryStore, ScriptedLLM

BOTS = Path(__file__).resolve().parents[2] / "bots"
PERSONA = replace(load_personas(BOTS)["default"], history_turns=10, history_tokens=400, summary_tokens=100)
KEY = ConversationKey(platform="teams", tenant="t1", conversation="19:abc")


def numbered(texts: Sequence[str], *, start: int = 1) -> list[StoredTurn]:
    return [
        StoredTurn(
            seq=start + i,
            turn=Turn(role="user" if i % 2 == 0 else "assistant", text=text, at=float(i), user_id="U1"),
        )
        for i, text in enumerate(texts)
    ]


async def filled(store: InMemoryStore, count: int, text: str = "짧은 말") -> None:
    for i in range(0, count, 2):
        await store.append(
            KEY,
            [
                Turn(role="user", text=f"{text} {i}", at=float(i), user_id="U1", user_name="김민수"),
                Turn(role="assistant", text=f"답 {i}", at=float(i)),
            ],
            retention=3600,
        )


def test_nothing_is_folded_while_everything_fits_the_window() -> None:
    assert fold_point(numbered(["짧은 말"] * 10), PERSONA) == 0


def test_too_many_turns_fold_the_oldest_down_to_half_the_window() -> None:
    turns = numbered(["짧은 말"] * 12)
    cut = fold_point(turns, PERSONA)
    # The newest half stays unfolded, plus the question of its first answer.
    assert len(turns) - cut == PERSONA.history_turns // 2 + 1
    assert turns[cut].turn.role == "user"


def test_too_many_tokens_fold_by_tokens() -> None:
    long = "다음 분기 예산 계획과 인력 배치, 일정 조정에 대해 자세히 설명드릴게요. " * 6
    turns = numbered([long] * 6)
    assert sum(4 + count_tokens(t.turn.text) for t in turns) > PERSONA.history_tokens
    cut = fold_point(turns, PERSONA)
    rest = sum(4 + count_tokens(t.turn.text) for t in turns[cut:])
    assert 0 < cut < len(turns) and rest < PERSONA.history_tokens  # what is left fits the window again
    assert fold_point(turns[cut:], PERSONA) == 0


def test_a_backlog_is_folded_in_bounded_steps() -> None:
    turns = numbered(["긴 문장이에요. " * 200] * 30)
    cut = fold_point(turns, replace(PERSONA, history_turns=200, history_tokens=3000))
    assert 0 < cut < 30
    assert sum(4 + count_tokens(t.turn.text) for t in turns[:cut]) <= MAX_FOLD_TOKENS


def test_the_prompt_is_korean_keeps_placeholders_and_names_speakers() -> None:
    turns = [
        StoredTurn(
            1, Turn(role="user", text="제 번호는 [전화번호]예요", at=0.0, user_id="U1", user_name="김민수")
        ),
        StoredTurn(2, Turn(role="assistant", text="확인했어요", at=1.0)),
    ]
    system, user = summary_prompt("- 예산 1,250만 원", turns, PERSONA)
    assert system.role == "system" and "한국어" in system.content
    assert "[전화번호]" in system.content and "복원하지 마십시오" in system.content
    assert "이름, 부서, 숫자, 금액" in system.content and f"{PERSONA.summary_tokens}자" in system.content
    assert "- 예산 1,250만 원" in user.content
    assert "[김민수] 제 번호는 [전화번호]예요" in user.content
    assert f"[{PERSONA.name}] 확인했어요" in user.content
    assert "(없음)" in summary_prompt("", turns, PERSONA)[1].content


async def test_a_fold_stores_a_masked_summary_within_its_budget() -> None:
    store = InMemoryStore()
    await filled(store, 12)
    leak = "김민수 님 연락처는 010-1234-5678이에요. " + "회의 내용이 아주 길어요. " * 80
    llm = ScriptedLLM(leak)
    summarizer = Summarizer(store=store, llm=llm, default_model="m")
    assert await summarizer.fold(KEY, PERSONA)
    summary = await store.summary(KEY)
    assert "010-1234-5678" not in summary.text and "[전화번호]" in summary.text
    assert count_tokens(summary.text) <= PERSONA.summary_tokens
    assert summary.upto == 6  # of twelve turns, the newest five stay unfolded, with the question of the first
    assert llm.calls[0][0].content.startswith("당신은 업무 대화의 기록 담당자입니다")
    assert not await summarizer.fold(KEY, PERSONA)  # the rest fits: no second call
    assert len(llm.calls) == 1


async def test_a_failing_summariser_stores_nothing_and_breaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryStore()
    await filled(store, 12)
    llm = ScriptedLLM("요약")
    llm.fail_with = LLMUnavailable("down")
    summarizer = Summarizer(store=store, llm=llm, default_model="m")
    summarizer.request(KEY, PERSONA)
    await summarizer.settle()
    assert await store.summary(KEY) == Summary()
    assert "summary failed: LLMUnavailable" in caplog.text


async def test_a_fold_is_discarded_when_the_conversation_was_reset_meanwhile() -> None:
    store = InMemoryStore()
    await filled(store, 12)
    llm = ScriptedLLM("- 요약")
    llm.gate = asyncio.Event()
    summarizer = Summarizer(store=store, llm=llm, default_model="m")
    summarizer.request(KEY, PERSONA)
    summarizer.request(KEY, PERSONA)  # one run per conversation at a time
    await llm.called()
    await store.clear(KEY)
    llm.gate.set()
    await summarizer.settle()
    assert len(llm.calls) == 1
    assert await store.summary(KEY) == Summary()


async def test_closing_cancels_a_stuck_summariser_and_refuses_new_work() -> None:
    store = InMemoryStore()
    await filled(store, 12)
    llm = ScriptedLLM("- 요약")
    llm.gate = asyncio.Event()  # never set: the model hangs
    summarizer = Summarizer(store=store, llm=llm, default_model="m")
    summarizer.request(KEY, PERSONA)
    await llm.called()
    await summarizer.close(timeout=0.01)
    summarizer.request(KEY, PERSONA)
    await summarizer.settle()
    assert len(llm.calls) == 1
    assert await store.summary(KEY) == Summary()


def messages_text(messages: Sequence[ChatMessage]) -> str:
    return "\n".join(m.content for m in messages)


async def test_the_group_summary_keeps_who_said_what(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    store = InMemoryStore()
    await filled(store, 12, text="예산 승인 요청")
    llm = ScriptedLLM(lambda messages: "- 김민수: 예산 승인 요청")
    assert await Summarizer(store=store, llm=llm, default_model="m").fold(KEY, PERSONA)
    assert "[김민수] 예산 승인 요청 0" in messages_text(llm.calls[0])
    assert "summary stored" in caplog.text
