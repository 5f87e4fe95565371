"""The engine with rate limits and a guarded LLM: refusals say when to try again; a model that
is down gets an apology at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.breaker import CircuitBreaker
from core.engine import Engine
from core.errors import LLMUnavailable
from core.limits import LocalRateLimiter, Rate
from core.llm.guard import GuardedLLM
from core.observer import LLMCall, Outcome
from core.persona import load_personas
from core.types import ConversationKey, Inbound
from tests.support.fakes import InMemoryStore, ScriptedLLM
from tests.support.redis import FakeClock

BOTS = Path(__file__).resolve().parents[2] / "bots"


@dataclass
class Recorder:
    """An Observer that keeps what it is told."""

    messages: list[tuple[Outcome, str]] = field(default_factory=list)
    calls: list[LLMCall] = field(default_factory=list)

    def message(self, platform: str, outcome: Outcome, *, seconds: float, scope: str = "") -> None:
        self.messages.append((outcome, scope))

    def llm_call(self, call: LLMCall) -> None:
        self.calls.append(call)

    def error(self, kind: str) -> None:
        return None


def message(text: str, mid: str, *, user: str = "u1", tenant: str = "T1", bot: str = "default") -> Inbound:
    key = ConversationKey(platform="slack", tenant=tenant, conversation=f"D-{user}", bot=bot)
    return Inbound(key=key, message_id=mid, user_id=user, text=text, is_direct=True)


def make(
    llm: ScriptedLLM | GuardedLLM, *, user: str = "2/60", tenant: str = "off", clock: FakeClock | None = None
) -> tuple[Engine, InMemoryStore, Recorder]:
    rates = {s: r for s, r in (("user", Rate.parse(user)), ("tenant", Rate.parse(tenant))) if r}
    limiter = LocalRateLimiter(rates, clock=clock or FakeClock(start=0.0))
    store, recorder = InMemoryStore(), Recorder()
    engine = Engine(
        store=store,
        llm=llm,
        personas=load_personas(BOTS),
        default_model="m",
        observer=recorder,
        limiter=limiter,
    )
    return engine, store, recorder


async def test_a_user_over_the_limit_is_told_politely_when_to_try_again() -> None:
    clock = FakeClock(start=0.0)
    llm = ScriptedLLM("네, 확인했어요.")
    engine, store, seen = make(llm, user="2/24", clock=clock)
    assert await engine.respond(message("첫 질문", "m1")) == "네, 확인했어요."
    assert await engine.respond(message("둘째 질문", "m2")) == "네, 확인했어요."
    clock.advance(0.5)
    refused = await engine.respond(message("셋째 질문", "m3"))
    assert refused == "메시지를 너무 빨리 보내고 있어요. 12초 뒤에 다시 보내 주세요."
    assert len(llm.calls) == 2  # the refused message cost no LLM call
    assert seen.messages[-1] == ("limited", "user")
    assert [t.text for t in store.turns[message("", "x").key.id]] == [
        "첫 질문",
        "네, 확인했어요.",
        "둘째 질문",
        "네, 확인했어요.",
    ]  # and is not remembered
    clock.advance(11.5)
    assert await engine.respond(message("넷째 질문", "m4")) == "네, 확인했어요."


async def test_the_refusal_follows_the_bots_speech_level_and_the_users_language() -> None:
    engine, _, _ = make(ScriptedLLM(), user="1/60")
    await engine.respond(message("질문", "f1", bot="formal"))
    formal = await engine.respond(message("질문", "f2", bot="formal"))
    assert formal == "메시지를 너무 빠르게 보내고 계십니다. 1분 후에 다시 보내 주십시오."
    await engine.respond(message("a question", "e1", user="u2"))
    english = await engine.respond(message("another question please", "e2", user="u2"))
    assert english == "You're sending messages too quickly. Please try again in 1 minute."


async def test_duplicates_and_commands_spend_no_tokens() -> None:
    engine, _, seen = make(ScriptedLLM("답"), user="1/60")
    assert await engine.respond(message("질문", "m1")) == "답"
    assert await engine.respond(message("질문", "m1")) == ""  # Slack's retry of the same message
    assert "명령어" in await engine.respond(message("도움말", "m2"))  # commands are always answered
    assert "초기화했어요" in await engine.respond(message("초기화", "m3"))
    assert [o for o, _ in seen.messages] == ["answered", "duplicate", "command", "command"]
    assert "빨리" in await engine.respond(message("또 질문", "m4"))


async def test_a_company_over_its_limit_is_refused_for_everyone_in_it() -> None:
    engine, _, seen = make(ScriptedLLM("답"), user="5/60", tenant="2/60")
    assert await engine.respond(message("질문", "a1", user="alice")) == "답"
    assert await engine.respond(message("질문", "b1", user="bob")) == "답"
    refused = await engine.respond(message("질문", "c1", user="carol"))
    assert refused == "지금 요청이 한꺼번에 몰려 잠시 쉬어 가고 있어요. 30초 뒤에 다시 보내 주세요."
    assert seen.messages[-1] == ("limited", "tenant")
    assert await engine.respond(message("질문", "d1", user="dave", tenant="T2")) == "답"


async def test_while_the_model_is_down_messages_get_the_apology_at_once() -> None:
    clock = FakeClock(start=0.0)
    inner = ScriptedLLM("돌아왔어요")
    inner.fail_with = LLMUnavailable("connection refused")
    llm = GuardedLLM(inner, breaker=CircuitBreaker(threshold=2, cooldown=30.0, clock=clock))
    engine, _, seen = make(llm, user="off")
    apologies = [await engine.respond(message(f"질문 {i}", f"m{i}")) for i in range(5)]
    assert all(a.startswith("죄송해요, 지금은 답변을 드리기 어려워요") for a in apologies)
    assert len(inner.calls) == 2  # then the breaker answered without the model
    assert [c.error for c in seen.calls] == ["LLMUnavailable"] * 2 + ["LLMCircuitOpen"] * 3
    clock.advance(30)
    inner.fail_with = None
    assert await engine.respond(message("다시 질문", "m9")) == "돌아왔어요"
