"""The metrics the engine reports land in Prometheus series with bounded labels."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from adapters.metrics import Metrics
from core.engine import Engine
from core.errors import LLMUnavailable
from core.persona import load_personas
from core.types import ConversationKey, Inbound
from tests.support.fakes import InMemoryStore, ScriptedLLM

BOTS = Path(__file__).resolve().parents[2] / "bots"


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


async def test_engine_events_become_series() -> None:
    metrics = Metrics()
    llm = ScriptedLLM("안녕하세요, 반가워요!")
    engine = Engine(
        store=InMemoryStore(), llm=llm, personas=load_personas(BOTS), default_model="m", observer=metrics
    )
    key = ConversationKey(platform="slack", tenant="T1", conversation="C1")
    hello = Inbound(key=key, message_id="1", user_id="U1", text="안녕하세요")
    await engine.respond(hello)
    await engine.respond(hello)  # a redelivery
    await engine.respond(Inbound(key=key, message_id="2", user_id="U1", text="도움말"))
    llm.fail_with = LLMUnavailable("down")
    await engine.respond(Inbound(key=key, message_id="3", user_id="U1", text="질문"))

    assert sample(metrics, "dari_messages_total", {"platform": "slack", "outcome": "answered"}) == 1
    assert sample(metrics, "dari_messages_total", {"platform": "slack", "outcome": "duplicate"}) == 1
    assert sample(metrics, "dari_messages_total", {"platform": "slack", "outcome": "command"}) == 1
    assert sample(metrics, "dari_messages_total", {"platform": "slack", "outcome": "apology"}) == 1
    assert sample(metrics, "dari_dedupe_hits_total", {"platform": "slack"}) == 1
    assert sample(metrics, "dari_llm_seconds_count") == 2
    assert sample(metrics, "dari_llm_first_token_seconds_count") == 1
    assert sample(metrics, "dari_llm_tokens_total", {"direction": "in"}) > 100  # the system prompt
    assert 0 < sample(metrics, "dari_llm_tokens_total", {"direction": "out"}) < 20
    assert sample(metrics, "dari_errors_total", {"kind": "LLMUnavailable"}) == 1
    assert sample(metrics, "dari_answer_seconds_count", {"platform": "slack"}) == 3


def test_queue_depth_is_read_at_scrape_time() -> None:
    metrics = Metrics()
    depth = [3]
    metrics.track_queue(lambda: depth[0])
    assert sample(metrics, "dari_queue_depth") == 3
    depth[0] = 0
    assert b"dari_queue_depth 0.0" in generate_latest(metrics.registry)
