"""Rolling summaries: a conversation's older turns folded into Korean prose, in the background.

A prompt shows the newest turns that fit the bot's ``history_tokens``. Once the turns not yet
folded no longer fit (or outnumber ``history_turns``), the oldest of them are folded into the
summary until the rest fit half the window, so the summariser runs about once per half window
of talk, never on a user's wait. The next turn uses whatever summary exists by then.

Turns are already masked; the summariser is told to keep placeholders such as [전화번호] as they
are, and its output is masked again before it is stored, so a summary never holds an identifier
in clear. A summary is stored only if nothing moved meanwhile (``Store.save_summary``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core import safety
from core.background import Background
from core.errors import DariError
from core.llm.base import LLM
from core.memory.base import Store
from core.persona import Persona
from core.tokens import count_tokens, truncate_tokens
from core.types import ChatMessage, ConversationKey, StoredTurn, Summary

__all__ = ["MAX_FOLD_TOKENS", "Summarizer", "fold_point", "summary_prompt"]

log = logging.getLogger(__name__)

MAX_FOLD_TOKENS = 6000  # turns folded per LLM call; a backlog is folded over several calls
_ROUNDS = 8  # calls per run at most, so one conversation cannot keep the summariser forever

_INSTRUCTIONS = """당신은 업무 대화의 기록 담당자입니다. '이전 요약'과 '새 대화'를 합쳐, 대화를 이어 갈 때 \
필요한 내용을 담은 하나의 요약을 한국어로 쓰십시오.

규칙
- 사람 이름, 부서, 숫자, 금액, 날짜와 시각, 기한, 결정 사항, 할 일, 요청, 선호를 빠짐없이 남기십시오. \
숫자와 고유명사는 원문 그대로 옮기십시오.
- 이전 요약의 사실은 새 대화에서 바뀌거나 취소되지 않았다면 그대로 유지하십시오.
- [전화번호], [이메일], [주민등록번호]처럼 대괄호로 가려진 표시는 그대로 두십시오. 가려진 값을 추측하거나 \
복원하지 마십시오.
- 누가 말했는지가 중요하면 이름을 남기십시오. 인사와 잡담은 빼십시오. 대화에 없는 내용을 지어내지 마십시오.
- '- '로 시작하는 짧은 항목으로 {limit}자 이내로 쓰고, 요약만 출력하십시오."""


def _cost(turn: StoredTurn) -> int:
    return 4 + count_tokens(turn.turn.text)  # as a prompt message: framing + role + content


def fold_point(unfolded: Sequence[StoredTurn], persona: Persona) -> int:
    """How many of the oldest unfolded turns to fold now (0: they all still fit the window)."""
    costs = [_cost(t) for t in unfolded]
    if len(costs) <= persona.history_turns and sum(costs) <= persona.history_tokens:
        return 0
    kept = spent = 0
    for cost in reversed(costs):
        if kept + 1 > persona.history_turns // 2 or spent + cost > persona.history_tokens // 2:
            break
        kept += 1
        spent += cost
    cut = len(costs) - kept
    # Keep a question with its answer rather than fold the question and leave the answer orphaned.
    if 1 < cut < len(costs) and unfolded[cut].turn.role == "assistant":
        cut -= 1
    total = 0
    for i, cost in enumerate(costs[:cut]):
        total += cost
        if total > MAX_FOLD_TOKENS and i > 0:
            return i
    return cut


def _speaker(turn: StoredTurn, persona: Persona) -> str:
    if turn.turn.role == "assistant":
        return persona.name
    return turn.turn.user_name.strip() or "사용자"


def summary_prompt(previous: str, folded: Sequence[StoredTurn], persona: Persona) -> list[ChatMessage]:
    """The messages asking the LLM for the new summary (in Korean, whatever the bot's language)."""
    talk = "\n".join(f"[{_speaker(t, persona)}] {t.turn.text}" for t in folded if t.turn.text.strip())
    body = f"이전 요약:\n{previous.strip() or '(없음)'}\n\n새 대화:\n{talk}"
    return [
        ChatMessage(role="system", content=_INSTRUCTIONS.format(limit=persona.summary_tokens)),
        ChatMessage(role="user", content=body),
    ]


class Summarizer:
    """Folds conversations in the background; at most one run per conversation per process."""

    def __init__(self, *, store: Store, llm: LLM, default_model: str) -> None:
        self._store = store
        self._llm = llm
        self._default_model = default_model
        self._background = Background()
        self._running: set[str] = set()

    def request(self, key: ConversationKey, persona: Persona) -> None:
        """Fold ``key`` soon if it needs it; returns at once."""
        if key.id in self._running:
            return  # the next turn asks again if this run missed the newest turns
        self._running.add(key.id)
        if not self._background.spawn(self._run(key, persona), name=f"summary {key.id}"):
            self._running.discard(key.id)

    async def _run(self, key: ConversationKey, persona: Persona) -> None:
        try:
            for _ in range(_ROUNDS):
                if not await self.fold(key, persona):
                    return
        except DariError as error:
            # Nothing is lost: the turns stay stored and the next turn asks again.
            log.warning("summary failed: %s", type(error).__name__, extra={"conversation": key.id})
        finally:
            self._running.discard(key.id)

    async def fold(self, key: ConversationKey, persona: Persona) -> bool:
        """Fold the oldest unfolded turns once if needed; True when a new summary was stored."""
        current = await self._store.summary(key)
        unfolded = await self._store.turns_after(key, seq=current.upto)
        cut = fold_point(unfolded, persona)
        if cut == 0:
            return False
        folded = unfolded[:cut]
        parts = [
            delta
            async for delta in self._llm.stream(
                summary_prompt(current.text, folded, persona),
                model=persona.model or self._default_model,
                temperature=0.0,
                max_tokens=persona.summary_tokens,
            )
        ]
        text = truncate_tokens(safety.mask(safety.normalize("".join(parts))).strip(), persona.summary_tokens)
        if not text:
            log.warning("the summariser gave an empty summary", extra={"conversation": key.id})
            return False
        summary = Summary(text=text, upto=folded[-1].seq)
        stored = await self._store.save_summary(key, summary, replaces=current, folded=folded)
        log.info(
            "summary %s",
            "stored" if stored else "discarded: the conversation changed meanwhile",
            extra={"conversation": key.id, "items": len(folded)},
        )
        return stored

    async def settle(self) -> None:
        """Wait until every run started so far (and any it starts) has finished."""
        await self._background.join()

    async def close(self, timeout: float) -> None:
        """Stop taking work; give runs in flight ``timeout`` seconds, then cancel them."""
        await self._background.close(timeout)
