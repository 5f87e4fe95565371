from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from core.persona import Persona
from core.prompt import MAX_USER_TOKENS, build_prompt, prompt_tokens
from core.tokens import count_messages, count_tokens, message_tokens
from core.types import ChatMessage, Turn

PERSONA = Persona(
    id="default",
    name="다리",
    speech_level="haeyo",
    language="ko",
    greeting="안녕하세요, 다리예요.",
    quick_replies=(),
    instructions="당신은 사내 업무 도우미 다리예요.",
    model="",
    temperature=0.3,
    max_answer_tokens=1024,
    history_tokens=600,
    history_turns=200,
    retention_days=30,
)
FORMAL = dataclasses.replace(PERSONA, id="formal", speech_level="hapsyo")

# 05:10 UTC is 14:10 in Seoul, a Wednesday.
NOW = datetime(2025, 3, 5, 5, 10, tzinfo=UTC)


def user(text: str, *, name: str = "", user_id: str = "U1", at: float = 0.0) -> Turn:
    return Turn(role="user", text=text, at=at, user_id=user_id, user_name=name)


def bot(text: str, *, at: float = 0.0) -> Turn:
    return Turn(role="assistant", text=text, at=at)


def conversation(turns: int) -> list[Turn]:
    """Alternating question/answer turns, each a few dozen tokens, numbered from the oldest."""
    return [
        user(f"질문 {n}: 다음 분기 예산 계획서 초안의 검토 일정을 알려 주세요.", at=n)
        if n % 2 == 0
        else bot(f"답변 {n}: 검토는 다음 주 수요일 오후에 재무팀과 함께 진행할 예정이에요.", at=n)
        for n in range(turns)
    ]


def system_of(messages: list[ChatMessage]) -> str:
    assert messages[0].role == "system"
    return messages[0].content


def test_shape_system_then_history_then_user() -> None:
    history = [user("안녕하세요"), bot("안녕하세요, 무엇을 도와드릴까요?")]
    messages = build_prompt(PERSONA, history, user("회의록 요약해 주세요"), now=NOW, group=False)
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1:] == [
        ChatMessage(role="user", content="안녕하세요"),
        ChatMessage(role="assistant", content="안녕하세요, 무엇을 도와드릴까요?"),
        ChatMessage(role="user", content="회의록 요약해 주세요"),
    ]


def test_system_has_instructions_level_and_time_in_kst() -> None:
    system = system_of(build_prompt(PERSONA, [], user("오늘 며칠이에요?"), now=NOW, group=False))
    assert system.startswith("당신은 사내 업무 도우미 다리예요.")
    assert "현재 시각(한국 표준시): 2025년 3월 5일 (수) 오후 2:10" in system
    assert "해요체" in system
    assert "하십시오체로" not in system


def test_hapsyo_persona_is_told_to_use_hapsyo() -> None:
    system = system_of(build_prompt(FORMAL, [], user("안녕"), now=NOW, group=False))
    assert "하십시오체(" in system
    assert "쓰십시오" in system


def test_upcoming_holidays_are_listed() -> None:
    # Seoul time 2026-09-10: 추석 and the 개천절 substitute day lie within six weeks.
    system = system_of(
        build_prompt(
            PERSONA, [], user("연휴가 언제예요?"), now=datetime(2026, 9, 10, tzinfo=UTC), group=False
        )
    )
    assert "- 9월 25일 (금) 추석" in system
    assert "- 10월 5일 (월) 개천절 대체공휴일" in system


def test_holidays_in_the_next_year_carry_the_year() -> None:
    system = system_of(
        build_prompt(PERSONA, [], user("연말 일정"), now=datetime(2026, 12, 20, tzinfo=UTC), group=False)
    )
    assert "- 12월 25일 (금) 기독탄신일" in system
    assert "- 2027년 1월 1일 (금) 신정" in system


def test_a_quiet_stretch_says_there_are_no_holidays() -> None:
    system = system_of(
        build_prompt(FORMAL, [], user("휴일"), now=datetime(2026, 11, 1, tzinfo=UTC), group=False)
    )
    assert "공휴일이 없습니다" in system


def test_summary_is_included_when_given() -> None:
    summary = "김민수 님이 3분기 보고서 초안을 요청했고, 매출 표를 먼저 정리하기로 했다."
    with_summary = build_prompt(PERSONA, [], user("이어서 해 주세요"), now=NOW, group=False, summary=summary)
    without = build_prompt(PERSONA, [], user("이어서 해 주세요"), now=NOW, group=False)
    assert summary in system_of(with_summary)
    assert "앞선 대화 요약" not in system_of(without)


def test_a_summary_never_takes_more_than_the_bots_summary_budget() -> None:
    huge = "결정 사항이 아주 많았어요. " * 500
    small = dataclasses.replace(PERSONA, summary_tokens=100)
    system = system_of(build_prompt(small, [], user("이어서"), now=NOW, group=False, summary=huge))
    bare = system_of(build_prompt(small, [], user("이어서"), now=NOW, group=False))
    assert 100 <= count_tokens(system) - count_tokens(bare) <= 100 + 10  # the header and blank lines


def test_facts_are_shown_in_a_private_chat_only() -> None:
    facts = ["저는 재무팀이에요", "보고서는 PDF로 주세요"]
    private = system_of(build_prompt(PERSONA, [], user("안녕"), now=NOW, group=False, facts=facts))
    group = system_of(build_prompt(PERSONA, [], user("안녕"), now=NOW, group=True, facts=facts))
    assert "사용자가 기억해 달라고 한 내용" in private
    assert "- 저는 재무팀이에요\n- 보고서는 PDF로 주세요" in private
    assert "재무팀" not in group and "기억해 달라고" not in group
    formal = system_of(build_prompt(FORMAL, [], user("안녕"), now=NOW, group=False, facts=facts))
    assert "활용하십시오" in formal


def test_budget_is_respected_and_newest_turns_are_kept() -> None:
    history = conversation(300)
    question = user("그럼 최종 제출일은 언제예요?", at=300)
    messages = build_prompt(PERSONA, history, question, now=NOW, group=False)
    kept = messages[1:-1]
    assert 2 < len(kept) < 300
    assert sum(message_tokens(m) for m in kept) <= PERSONA.history_tokens
    assert count_messages(messages) <= (
        PERSONA.history_tokens + message_tokens(messages[0]) + message_tokens(messages[-1]) + 3
    )
    assert kept[-1].content.startswith("답변 299:")  # the newest turn is always first to be kept
    assert kept[0].role == "user"  # no answer opens the history without its question
    numbers = [int(m.content.split(":")[0].split()[1]) for m in kept]
    assert numbers == list(range(numbers[0], 300))  # contiguous, oldest first
    assert messages[-1] == ChatMessage(role="user", content=question.text)


def test_an_orphaned_answer_is_not_kept() -> None:
    history = conversation(40)
    messages = build_prompt(PERSONA, history, user("다음은요?"), now=NOW, group=False)
    kept = messages[1:-1]
    room = PERSONA.history_tokens - sum(message_tokens(m) for m in kept)
    assert kept[0].role == "user"
    # Without the orphan rule the oldest kept message would have been an answer: it fit the budget.
    dropped_answer = ChatMessage(role="assistant", content=history[40 - len(kept) - 1].text)
    assert message_tokens(dropped_answer) <= room


def test_history_turns_limit_applies() -> None:
    roomy = dataclasses.replace(PERSONA, history_tokens=100_000, history_turns=6)
    messages = build_prompt(roomy, conversation(50), user("요약해 주세요"), now=NOW, group=False)
    assert len(messages) == 1 + 6 + 1


def test_a_turn_bigger_than_the_budget_stops_the_history() -> None:
    history = [user("오래된 질문"), bot("오래된 답변"), user("긴 자료 " * 2000), bot("받았어요")]
    messages = build_prompt(PERSONA, history, user("요약해 주세요"), now=NOW, group=False)
    assert [m.content for m in messages[1:]] == ["요약해 주세요"]


def test_group_messages_carry_speaker_names() -> None:
    history = [
        user("이번 주 회의 언제죠?", name="김민수", user_id="U1"),
        bot("목요일 오후 3시예요."),
        user("장소도 알려 주세요", name="", user_id="U2"),
    ]
    messages = build_prompt(
        PERSONA, history, user("감사합니다", name="이서연", user_id="U3"), now=NOW, group=True
    )
    assert [m.content for m in messages[1:]] == [
        "[김민수] 이번 주 회의 언제죠?",
        "목요일 오후 3시예요.",
        "[U2] 장소도 알려 주세요",
        "[이서연] 감사합니다",
    ]
    system = system_of(messages)
    assert "[김민수] ..." in system
    assert "님" in system
    direct = build_prompt(PERSONA, history, user("감사합니다", name="이서연"), now=NOW, group=False)
    assert direct[-1].content == "감사합니다"
    assert "단체 대화" not in system_of(direct)


def test_a_huge_user_message_is_cut_but_kept() -> None:
    text = "첫 문장이 요청입니다. " + "붙여 넣은 긴 문서의 내용입니다. " * 5000
    messages = build_prompt(PERSONA, [], user(text), now=NOW, group=False)
    last = messages[-1].content
    assert last.startswith("첫 문장이 요청입니다.")
    assert last.endswith("(메시지가 길어 앞부분만 전달됐어요.)")
    assert MAX_USER_TOKENS < count_tokens(last) <= MAX_USER_TOKENS + 30


def test_a_user_message_over_the_history_budget_is_kept_whole() -> None:
    text = "검토 부탁드립니다. " * 400  # over history_tokens, under MAX_USER_TOKENS
    messages = build_prompt(PERSONA, conversation(10), user(text), now=NOW, group=False)
    assert messages[-1].content == text


def test_deterministic_and_pure() -> None:
    history = conversation(30)
    snapshot = list(history)
    first = build_prompt(PERSONA, history, user("다음 단계는요?"), now=NOW, group=True, summary="요약")
    second = build_prompt(PERSONA, history, user("다음 단계는요?"), now=NOW, group=True, summary="요약")
    assert first == second
    assert history == snapshot
    assert prompt_tokens(first) == count_messages(first)
