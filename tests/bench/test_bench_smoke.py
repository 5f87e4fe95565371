"""Smoke test of bench/: every benchmark runs with tiny counts and returns well-formed results.

Nothing here is timed: a benchmark's figures are read by people (docs/benchmarks.md), never
asserted. This only keeps the benchmark code working as the service changes under it.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import concurrency, first_text, kakao_deadline, overhead, profile, prompt_growth
from bench.common import ROOT, Layout

LAYOUT = Layout(server_cpu=None, load_cpu=None, repo=ROOT, redis_url="redis://127.0.0.1:9/0")


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def test_overhead_compares_a_door_with_the_floor() -> None:
    options = {"variants": ["floor/-", "kakao/sqlite"], "concurrency": [2], "warmup": 0.3, "duration": 1.0}

    result = overhead.run(LAYOUT, quick=True, options=options)

    rows = {(r["door"], r["store"]): r for r in result["rows"]}
    assert set(rows) == {("floor", "-"), ("kakao", "sqlite")}
    for row in rows.values():
        assert row["answers"] > 0
        assert row["statuses"] == {"answer": row["count"]}
        assert finite(row["throughput"]) and finite(row["latency"]["p50"])
        assert finite(row["server_cpu_ms_per_answer"])
    assert rows[("floor", "-")]["throughput_ratio"] == 1.0
    assert "kakao" in overhead.report(result)


def test_concurrency_reads_lag_memory_and_cpu() -> None:
    options = {"levels": [2], "llm_seconds": 0.3, "waves": 1, "mid": 0.1, "warmup_questions": 1}

    result = concurrency.run(LAYOUT, quick=True, options=options)

    (row,) = result["rows"]
    (wave,) = row["waves"]
    assert wave["count"] == 2
    assert wave["answers"] + wave["statuses"].get("fallback", 0) == 2
    assert wave["lag"]["samples"] > 0
    assert finite(row["rss_per_conversation_kib"]) and finite(row["cpu_ms_per_message"])
    assert "in flight" in concurrency.report(result)


def test_prompt_growth_counts_every_turn() -> None:
    result = prompt_growth.run(LAYOUT, quick=True, options={"turns": 4})

    assert [r["turn"] for r in result["rows"]] == [1, 2, 3, 4]
    first = result["rows"][0]
    assert first["prompt_tokens"] == first["full_history_tokens"] > 0
    assert result["rows"][-1]["prompt_messages"] == 8  # system, three earlier pairs, the new message
    assert "full history" in prompt_growth.report(result)


def test_kakao_deadline_asks_with_and_without_a_callback() -> None:
    result = kakao_deadline.run(LAYOUT, quick=True, options={"latencies": [0.2], "count": 1})

    (point,) = result["points"]
    for kind in ("callback", "no_callback"):
        assert point[kind]["count"] == 1
        assert point[kind]["statuses"] == {"answer": 1}
    assert "callback URL" in kakao_deadline.report(result)


def test_first_text_is_measured_on_slack_and_teams() -> None:
    result = first_text.run(LAYOUT, quick=True, options={"count": 1, "points": [(0.05, 5, 0.01)]})

    assert [r["door"] for r in result["rows"]] == ["slack", "teams"]
    for row in result["rows"]:
        assert row["statuses"] == {"answer": 1}
        assert finite(row["visible_after_first_token"]["p50"])
        assert finite(row["complete_after_last_token"]["p50"])
    assert "teams" in first_text.report(result)


@pytest.mark.parametrize("idle_last", [True, False])
def test_profile_attribution_leaves_idle_time_out(idle_last: bool) -> None:
    loop = ["run_app\x00/x/aiohttp/web.py\x001", "_run\x00/lib/asyncio/events.py\x0080"]
    busy = [*loop, "skill\x00/r/adapters/kakao/handler.py\x009", "mask\x00/r/core/safety.py\x0030"]
    idle = ["select\x00/lib/selectors.py\x00400"]
    records: list[list[Any]] = [[busy, 0.003], [idle, 0.001] if idle_last else [busy, 0.001]]

    found = profile.attribute(records)

    assert found["idle_seconds"] == pytest.approx(0.001 if idle_last else 0.0)
    assert found["concerns"]["PII masking (core/safety.py)"] == pytest.approx(found["busy_seconds"])
    assert "aiohttp server and client (HTTP parsing, responses)" not in found["concerns"]
