"""Protections from settings: readable rates from the environment, and what gets built."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from adapters.metrics import Metrics
from adapters.protection import BUSY_POOL_WAIT, guard_llm, open_limiter, redis_client, shield_store, watch
from adapters.server import open_store
from adapters.settings import Settings
from core.breaker import BreakerState
from core.limits import LocalRateLimiter, Rate
from core.llm.guard import GuardedLLM
from core.memory import EmbeddedStore, RedisStore
from core.memory.redis_limits import RedisRateLimiter
from core.memory.resilient import ResilientStore
from tests.support.fakes import ScriptedLLM
from tests.support.redis_server import RedisServer
from tests.support.service import IsolatedSettings


def from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_limits_are_read_from_their_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(
        monkeypatch,
        DARI_RATE_USER="10/1m",
        DARI_RATE_TENANT="off",
        DARI_LLM_CONCURRENCY="4",
        DARI_LLM_BREAKER_THRESHOLD="7",
        DARI_LLM_BREAKER_COOLDOWN="12.5",
    )
    assert settings.rates == {"user": Rate(capacity=10, seconds=60.0)}
    assert (settings.llm_concurrency, settings.llm_breaker_threshold, settings.llm_breaker_cooldown) == (
        4,
        7,
        12.5,
    )


def test_the_defaults_protect_without_getting_in_the_way(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = from_env(monkeypatch)
    assert settings.rates == {
        "user": Rate(capacity=20, seconds=60.0),
        "tenant": Rate(capacity=600, seconds=60.0),
    }
    assert settings.llm_concurrency == 32


@pytest.mark.parametrize(
    ("name", "value"), [("DARI_RATE_USER", "20 a minute"), ("DARI_LLM_CONCURRENCY", "0")]
)
def test_a_wrong_limit_stops_start_up_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(ValidationError, match=name):
        from_env(monkeypatch, **{name: value})


async def test_with_redis_limits_and_the_store_are_shared_and_shielded(redis_url: str) -> None:
    settings = IsolatedSettings(redis_url=redis_url)
    limiter = open_limiter(settings)
    store = shield_store(RedisStore.from_url(redis_url), "redis")
    try:
        assert isinstance(limiter, RedisRateLimiter)
        assert isinstance(store, ResilientStore) and isinstance(store.inner, RedisStore)
    finally:
        await limiter.close()
        await store.close()


async def test_the_store_waits_for_a_busy_pool_rather_than_count_redis_as_down(redis_url: str) -> None:
    # Found by the three-door soak: the store's pool stayed busy for 5 s under load, the store
    # answered from its local buffer, and a Kakao answer kept in Redis came a message late.
    store, _ = await open_store(IsolatedSettings(redis_url=redis_url))
    try:
        assert isinstance(store, RedisStore)
        assert store._client.connection_pool.timeout == BUSY_POOL_WAIT >= 30  # type: ignore[attr-defined]
    finally:
        await store.close()


async def test_a_burst_past_the_connection_pool_waits_for_a_connection_instead_of_failing(
    redis_url: str,
) -> None:
    # redis-py's default pool refuses the 101st concurrent command ("Too many connections"); a
    # Redis back from a restart meets exactly such a burst of waiting jobs.
    client = redis_client(redis_url, pool=2)
    try:
        names = {f"burst-{i}" for i in range(40)}
        answers = await asyncio.gather(*(client.echo(name) for name in names))
        assert {answer.decode() if isinstance(answer, bytes) else answer for answer in answers} == names
        assert client.connection_pool.max_connections == 2
        pool = client.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) == 2
    finally:
        await client.aclose()


async def test_without_redis_limits_are_local_and_the_file_store_is_used_as_is(tmp_path: Path) -> None:
    settings = IsolatedSettings(data_dir=tmp_path)
    assert isinstance(open_limiter(settings), LocalRateLimiter)
    embedded = await EmbeddedStore.open(path=tmp_path / "dari.sqlite3")
    try:
        assert shield_store(embedded, "embedded") is embedded
    finally:
        await embedded.close()


async def test_the_llm_is_guarded_as_configured_and_its_breaker_is_a_gauge() -> None:
    settings = IsolatedSettings(llm_concurrency=3, llm_breaker_threshold=1, llm_breaker_cooldown=5)
    assert guard_llm(None, settings) is None
    llm = guard_llm(ScriptedLLM(), settings)
    assert isinstance(llm, GuardedLLM)
    assert (llm.concurrency, llm.breaker.threshold, llm.breaker.cooldown) == (3, 1, 5)
    metrics = Metrics()
    store = ResilientStore(inner=RedisStore.from_url("redis://127.0.0.1:1"))
    watch(metrics, store=store, llm=llm)
    await store.close()
    scraped = generate_latest(metrics.registry).decode()
    assert 'dari_llm_circuit_state{state="closed"} 1.0' in scraped
    assert "dari_store_degraded 0.0" in scraped
    llm.breaker.failed()
    assert llm.breaker.state is BreakerState.OPEN
    scraped = generate_latest(metrics.registry).decode()
    assert 'dari_llm_circuit_state{state="open"} 1.0' in scraped
    assert 'dari_llm_circuit_state{state="closed"} 0.0' in scraped


async def test_a_connection_left_from_before_a_redis_restart_costs_no_failed_command() -> None:
    # Found by the soak: right after a restart, each pooled connection used within the health
    # check's 2 s failed one command ("Connection closed by server"), and every such failure made
    # the store or the job queue count Redis as down again for a moment.
    async with RedisServer() as server:
        client = redis_client(server.url, pool=1)
        try:
            assert await client.ping()  # the pool's one connection, just used
            await server.stop()
            await server.start()
            assert await client.set("after-restart", "1")
            assert await client.get("after-restart") == b"1"
        finally:
            await client.aclose()
