"""The fault and soak suite, short: 200 messages over 20 Slack threads through two real processes
on one private Redis, while the LLM fails (429, 500, too slow), one process is SIGKILLed and
started again, and Redis is restarted. Nothing lost, nothing answered twice, order kept.

The long run (10,000 messages over 500 conversations) is ``python bench/run.py --only soak``;
both use ``bench/soak.py``.

NOT part of CI yet: with a process killed during LLM faults it fails intermittently (an answer out
of order or lost), and the Redis-restart case cannot assert order. It reproduces the open issue 6
problems (docs/benchmarks.md, "Fault and soak"); run it with
``python -m pytest bench/soak_check.py -p tests.support.redis -p tests.support.openai_server``
and move it back to tests/e2e/ once it passes reliably.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.soak import Plan, soak

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


async def test_a_killed_process_and_a_failing_llm_lose_nothing_double_nothing_and_keep_order(
    tmp_path: Path,
) -> None:
    plan = Plan(
        messages=150, conversations=15, rate_429=0.03, rate_500=0.03, rate_slow=0.01,
        redis_restart_at=2.0, settle_timeout=45,
    )  # fmt: skip

    result = await soak(plan, workdir=tmp_path)

    assert result["sent"] == 150 and result["faults"]["process_killed"] == 1
    assert result["lost"] == 0, result
    assert result["doubled"] == 0, result
    assert result["out_of_order"] == 0, result
    assert result["unfinished_messages"] == 0 and result["other_messages"] == 0, result
    assert result["answered"] + result["apologies"] == 150


async def test_a_redis_restart_with_a_kill_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    # Order is not asserted here: a message accepted while Redis is away runs at once, without
    # durability and without waiting for its conversation's turn (docs/architecture.md,
    # "Durable processing"), so it can overtake an earlier one. The soak reports how many did.
    # The lease outlasts the restart (as the default 60 s does): with a lease shorter than the
    # time Redis is away, jobs still running are taken over and may be answered twice.
    plan = Plan(
        messages=150, conversations=15, rate_429=0.03, rate_500=0.03, lease=5.0, settle_timeout=45
    )  # fmt: skip

    result = await soak(plan, workdir=tmp_path)

    assert result["faults"]["process_killed"] == 1 and result["faults"]["redis_restarted"] == 1
    assert result["lost"] == 0, result
    assert result["doubled"] == 0, result
    assert result["unfinished_messages"] == 0 and result["other_messages"] == 0, result
    assert result["answered"] + result["apologies"] == 150
