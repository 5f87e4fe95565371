"""Benchmark 3: prompt tokens per turn over a long Korean conversation, against sending the full history.

The engine runs through its public API (``Engine.stream`` via ``respond``) on a real embedded
store, with a recording LLM that answers in synthetic business Korean and records every prompt
it is sent. Whatever the engine does to bound prompts (recent turns within the bot's budget,
rolling summaries folded in the background: each turn waits for ``Engine.settle``) shows up in
the recorded prompts. Summary calls go to a second recorder (``summary_llm``) when the engine
takes one, so their tokens are counted apart. The full-history figure is the same system
message plus every earlier turn verbatim plus the new message, counted with the same o200k
tokenizer (core/tokens.py).

Runs in a subprocess so that ``--repo`` decides which engine is measured.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Layout, base_env, fmt, run_json, table

__all__ = ["report", "run"]

_TOPICS = (
    "3분기 매출 보고서",
    "신규 고객사 온보딩 일정",
    "사내 보안 교육",
    "해외 출장 경비 정산",
    "채용 공고 문구",
    "주간 회의록",
    "제품 출시 공지",
    "협력사 계약 갱신",
    "팀 워크숍 장소",
    "연말 평가 기준",
)
_ASKS = (
    "{topic} 초안을 써 주세요. 핵심만 세 줄로요.",
    "{topic} 관련해서 지난번에 정한 기한이 언제였죠?",
    "{topic} 내용을 영어로 번역해 주세요.",
    "{topic}에 들어갈 항목을 표로 정리해 줄 수 있어요? 담당자는 김민수 님, 이지은 님이에요.",
    "{topic} 메일을 팀장님께 보낼 거예요. 하십시오체로 다듬어 주세요.",
    "{topic} 예산이 1,250,000원인데 항목별로 나눠 주세요.",
)
_SENTENCES = (
    "요청하신 내용을 정리했어요.",
    "핵심은 일정과 담당자를 먼저 확정하는 거예요.",
    "기한은 다음 주 금요일 오후 6시(KST)로 잡는 게 좋아 보여요.",
    "예산은 인건비, 장소 대여비, 다과비로 나누면 관리하기 편해요.",
    "관련 부서에는 미리 공유해 두시면 좋아요.",
    "확실하지 않은 부분은 인사팀에 확인해 보시는 걸 권해요.",
    "초안은 아래와 같아요. 필요하면 더 줄여 드릴게요.",
    "- 목적: 진행 상황을 공유하고 다음 단계를 정해요.",
    "- 참석자: 기획팀, 재무팀, 영업팀 담당자",
    "- 준비물: 지난 회의록과 최신 수치 자료",
)


def _user_text(rng: random.Random, turn: int) -> str:
    text = rng.choice(_ASKS).format(topic=_TOPICS[(turn // 4) % len(_TOPICS)])
    if turn % 25 == 24:  # now and then a pasted document
        text += "\n\n" + " ".join(rng.choice(_SENTENCES) for _ in range(30))
    return text


def _answer_text(rng: random.Random) -> str:
    return " ".join(rng.choice(_SENTENCES) for _ in range(rng.randint(4, 12)))


def _summary_text(rng: random.Random) -> str:
    lines = [f"- {topic}: 담당 김민수 님, 기한 다음 주 금요일" for topic in rng.sample(_TOPICS, 6)]
    return "\n".join(lines)


class RecordingLLM:
    """An LLM port that records every prompt and answers at once in synthetic Korean."""

    def __init__(self, *, summaries: bool, seed: int) -> None:
        self.calls: list[list[Any]] = []
        self._summaries = summaries
        self._rng = random.Random(seed)

    async def stream(
        self, messages: Sequence[Any], *, model: str, temperature: float, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        yield _summary_text(self._rng) if self._summaries else _answer_text(self._rng)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def _converse(turns: int) -> dict[str, Any]:
    from adapters.settings import DEFAULT_BOTS_DIR
    from core.engine import Engine
    from core.memory import EmbeddedStore
    from core.persona import load_personas
    from core.prompt import build_prompt
    from core.tokens import count_messages
    from core.types import ChatMessage, ConversationKey, Inbound, Turn

    personas = load_personas(DEFAULT_BOTS_DIR)
    persona = personas["default"]
    now = datetime(2025, 3, 5, 1, 0, tzinfo=UTC)  # 10:00 KST on a Wednesday
    answers = RecordingLLM(summaries=False, seed=1)
    summaries = RecordingLLM(summaries=True, seed=2)
    separate = "summary_llm" in inspect.signature(Engine.__init__).parameters
    rng = random.Random(0)
    key = ConversationKey(platform="kakao", tenant="bench", conversation="user-1")
    rows: list[dict[str, Any]] = []
    history: list[ChatMessage] = []
    with tempfile.TemporaryDirectory(prefix="dari-bench-prompt-") as folder:
        store = await EmbeddedStore.open(path=Path(folder) / "dari.sqlite3")
        options: dict[str, Any] = {"summary_llm": summaries} if separate else {}
        engine = Engine(
            store=store,
            llm=answers,
            personas=personas,
            default_model="gpt-4o-mini",
            clock=lambda: now,
            **options,
        )
        try:
            for turn in range(turns):
                text = _user_text(rng, turn)
                inbound = Inbound(key=key, message_id=f"m{turn}", user_id="user-1", text=text)
                calls_before = len(answers.calls)
                summary_before = len(summaries.calls)
                reply = await engine.respond(inbound)
                if hasattr(engine, "settle"):
                    await engine.settle()
                prompts = answers.calls[calls_before:]
                prompt = prompts[0]
                folded = summaries.calls[summary_before:]
                if not separate:  # summaries went to the same recorder: the later calls
                    prompt, folded = prompts[0], prompts[1:]
                user = Turn(role="user", text=text, at=0.0, user_id="user-1")
                system = build_prompt(persona, [], user, now=now, group=False)[0]
                full = count_messages([system, *history, ChatMessage(role="user", content=text)])
                rows.append(
                    {
                        "turn": turn + 1,
                        "prompt_tokens": count_messages(prompt),
                        "prompt_messages": len(prompt),
                        "full_history_tokens": full,
                        "summary_calls": len(folded),
                        "summary_input_tokens": sum(count_messages(call) for call in folded),
                    }
                )
                history += [
                    ChatMessage(role="user", content=text),
                    ChatMessage(role="assistant", content=reply),
                ]
        finally:
            if hasattr(engine, "close"):
                await engine.close()
            await store.close()
    return {
        "persona": {
            "history_tokens": persona.history_tokens,
            "history_turns": persona.history_turns,
            "summary_tokens": getattr(persona, "summary_tokens", None),
        },
        "summaries_separate": separate,
        "rows": rows,
    }


def run(layout: Layout, *, quick: bool, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options: ``turns``."""
    turns = int((options or {}).get("turns", 60 if quick else 200))
    result = run_json(
        "bench.prompt_growth", {"turns": turns}, env=base_env(layout.repo), cpu=layout.load_cpu, timeout=600
    )
    rows = result["rows"]
    total_dari = sum(r["prompt_tokens"] + r["summary_input_tokens"] for r in rows)
    total_full = sum(r["full_history_tokens"] for r in rows)
    result.update(
        turns=turns,
        max_prompt_tokens=max(r["prompt_tokens"] for r in rows),
        total_tokens_dari=total_dari,
        total_tokens_full_history=total_full,
        summary_calls=sum(r["summary_calls"] for r in rows),
    )
    return result


def report(result: dict[str, Any]) -> str:
    marks = {1, 5, 10, 20, 30, 40, 50, 75, 100, 150, 200, result["turns"]}
    rows = []
    dari = full = 0
    for r in result["rows"]:
        dari += r["prompt_tokens"] + r["summary_input_tokens"]
        full += r["full_history_tokens"]
        if r["turn"] in marks:
            rows.append(
                [
                    r["turn"],
                    r["prompt_tokens"],
                    r["prompt_messages"],
                    r["full_history_tokens"],
                    fmt(r["full_history_tokens"] / r["prompt_tokens"], 1),
                    dari,
                    full,
                ]
            )
    body = table(
        [
            "turn",
            "dari prompt tokens",
            "messages",
            "full history tokens",
            "full / dari",
            "dari cumulative (incl. summaries)",
            "full cumulative",
        ],
        rows,
    )
    return (
        f"{body}\nmax dari prompt: {result['max_prompt_tokens']} tokens; "
        f"summary calls: {result['summary_calls']}; "
        f"all tokens sent over {result['turns']} turns: dari {result['total_tokens_dari']:,}, "
        f"full history {result['total_tokens_full_history']:,} "
        f"({fmt(result['total_tokens_full_history'] / max(result['total_tokens_dari'], 1), 1)}x)"
    )


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(_converse(int(spec["turns"])))), flush=True)


if __name__ == "__main__":
    main()
