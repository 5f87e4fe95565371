"""The messages sent to the LLM for one answer: pure, deterministic, within a token budget.

The system message carries what the model cannot know or reliably recall: the persona, its
speech level, the time in KST, the coming public holidays, the summary of older talk, in a
private chat the facts the user asked to be remembered and, in group chats, how speakers are
marked. Past turns follow, newest kept first, then the new message.

Every part has a ceiling (summary: the bot's ``summary_tokens``; facts: ``MAX_FACT_TOKENS``;
past turns: ``history_tokens``; the new message: ``MAX_USER_TOKENS``), so a prompt's size is
bounded however long the conversation grows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from core.calendar import KST, format_date_ko, format_kst, upcoming_holidays
from core.persona import Persona, SpeechLevel
from core.tokens import count_messages, message_tokens, truncate_tokens
from core.types import ChatMessage, Turn

__all__ = ["HOLIDAY_WINDOW_DAYS", "MAX_FACT_TOKENS", "MAX_USER_TOKENS", "build_prompt", "prompt_tokens"]

HOLIDAY_WINDOW_DAYS = 42

# One pasted document must not crowd out everything else; its start usually carries the request.
MAX_USER_TOKENS = 8000

# Facts are capped in number and length when stored; this keeps the prompt bounded regardless.
MAX_FACT_TOKENS = 2000

_RULES: dict[SpeechLevel, dict[str, str]] = {
    "haeyo": {
        "level": (
            "말투: 한국어로 답할 때는 처음부터 끝까지 해요체(-아요/-어요, -세요)로 쓰세요. "
            "하십시오체와 섞지 말고, 사용자가 반말을 써도 반말로 답하지 마세요."
        ),
        "holidays": "다가오는 공휴일(오늘부터 6주, 대체공휴일 포함):",
        "no_holidays": "오늘부터 6주 안에는 공휴일이 없어요.",
        "summary": "앞선 대화 요약:",
        "facts": (
            "사용자가 기억해 달라고 한 내용(사용자 본인에 관한 정보예요. "
            "관련 있을 때만 자연스럽게 활용하세요):"
        ),
        "group": (
            "이 대화는 여러 사람이 함께 있는 단체 대화예요. 사용자 메시지 앞에는 "
            '"[김민수] ..."처럼 보낸 사람의 이름이 붙어 있어요. 답변에는 이 표시를 붙이지 말고, '
            "사람을 부를 때는 \"김민수 님\"처럼 이름 뒤에 '님'을 붙이세요."
        ),
        "truncated": "(메시지가 길어 앞부분만 전달됐어요.)",
    },
    "hapsyo": {
        "level": (
            "말투: 한국어로 답할 때는 처음부터 끝까지 하십시오체(-ㅂ니다/-습니다, -ㅂ니까, -십시오)로 "
            "쓰십시오. 해요체와 섞지 말고, 사용자가 반말을 써도 반말로 답하지 마십시오."
        ),
        "holidays": "다가오는 공휴일(오늘부터 6주, 대체공휴일 포함):",
        "no_holidays": "오늘부터 6주 안에는 공휴일이 없습니다.",
        "summary": "앞선 대화 요약:",
        "facts": (
            "사용자가 기억해 달라고 한 내용(사용자 본인에 관한 정보입니다. "
            "관련 있을 때만 자연스럽게 활용하십시오):"
        ),
        "group": (
            "이 대화는 여러 사람이 함께 있는 단체 대화입니다. 사용자 메시지 앞에는 "
            '"[김민수] ..."처럼 보낸 사람의 이름이 붙어 있습니다. 답변에는 이 표시를 붙이지 말고, '
            "사람을 부를 때는 \"김민수 님\"처럼 이름 뒤에 '님'을 붙이십시오."
        ),
        "truncated": "(메시지가 길어 앞부분만 전달되었습니다.)",
    },
}


def _holiday_lines(today: date, rules: dict[str, str]) -> str:
    found = upcoming_holidays(today, days=HOLIDAY_WINDOW_DAYS)
    if not found:
        return rules["no_holidays"]
    lines = [rules["holidays"]]
    for day, name in found:
        # Near New Year the list crosses into the next year; say so rather than leave it implied.
        year = f"{day.year}년 " if day.year != today.year else ""
        lines.append(f"- {year}{format_date_ko(day)} {name}")
    return "\n".join(lines)


def _system(persona: Persona, *, now: datetime, group: bool, summary: str, facts: Sequence[str]) -> str:
    rules = _RULES[persona.speech_level]
    local = now.astimezone(KST) if now.tzinfo is not None else now
    parts = [
        persona.instructions.strip(),
        rules["level"],
        f"현재 시각(한국 표준시): {format_kst(local)}",
        _holiday_lines(local.date(), rules),
    ]
    if summary.strip():
        parts.append(f"{rules['summary']}\n{truncate_tokens(summary.strip(), persona.summary_tokens)}")
    if facts and not group:
        listed = "\n".join(f"- {fact}" for fact in facts)
        parts.append(f"{rules['facts']}\n{truncate_tokens(listed, MAX_FACT_TOKENS)}")
    if group:
        parts.append(rules["group"])
    return "\n\n".join(parts)


def _render(turn: Turn, *, group: bool) -> ChatMessage:
    if turn.role == "assistant":
        return ChatMessage(role="assistant", content=turn.text)
    speaker = turn.user_name.strip() or turn.user_id
    if group and speaker:
        return ChatMessage(role="user", content=f"[{speaker}] {turn.text}")
    return ChatMessage(role="user", content=turn.text)


def _recent(history: Sequence[Turn], *, persona: Persona, group: bool) -> list[ChatMessage]:
    kept: list[ChatMessage] = []
    spent = 0
    for turn in reversed(history[-persona.history_turns :]):
        if not turn.text.strip():
            continue
        message = _render(turn, group=group)
        cost = message_tokens(message)
        if spent + cost > persona.history_tokens:
            break  # contiguous: never skip a long turn to keep an older one
        kept.append(message)
        spent += cost
    kept.reverse()
    # An answer whose question fell outside the budget only confuses the model.
    while kept and kept[0].role == "assistant":
        kept.pop(0)
    return kept


def build_prompt(
    persona: Persona,
    history: Sequence[Turn],
    user_turn: Turn,
    *,
    now: datetime,
    group: bool,
    summary: str = "",
    facts: Sequence[str] = (),
) -> list[ChatMessage]:
    """The Chat Completions messages for answering ``user_turn``.

    Args:
        persona: the bot answering; its instructions, speech level and history budget.
        history: earlier turns of the conversation, oldest first, already masked.
        user_turn: the message to answer; always included, its text cut to ``MAX_USER_TOKENS``.
        now: the current moment (aware, any zone); shown to the model in KST.
        group: True in channels and group chats: user messages are marked with their speaker.
        summary: the rolling summary of older turns, or ""; cut to ``persona.summary_tokens``.
        facts: what the user asked to be remembered about them; never shown in a group chat,
            whatever the caller passes, since other people would read the answers.

    Returns:
        A system message, the newest past turns that fit ``persona.history_tokens``
        (whole turns, oldest first, never opening with an orphaned answer), and the user turn.
    """
    text = truncate_tokens(user_turn.text, MAX_USER_TOKENS)
    if text != user_turn.text:
        text = f"{text}\n\n{_RULES[persona.speech_level]['truncated']}"
    user = _render(replace(user_turn, role="user", text=text), group=group)
    system = ChatMessage(
        role="system", content=_system(persona, now=now, group=group, summary=summary, facts=facts)
    )
    return [system, *_recent(history, persona=persona, group=group), user]


def prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """The prompt tokens of a message list (for benchmarks and logs)."""
    return count_messages(messages)
