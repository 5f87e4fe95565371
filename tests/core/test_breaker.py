"""The circuit breaker's states, moved by an injected clock."""

from __future__ import annotations

import logging

import pytest

from core.breaker import BreakerState, CircuitBreaker
from core.errors import ConfigError
from tests.support.redis import FakeClock


def state(guard: CircuitBreaker) -> BreakerState:
    return guard.state  # read afresh: every call may change it


def breaker(clock: FakeClock, **kw: float) -> CircuitBreaker:
    values: dict[str, float] = {"threshold": 3, "cooldown": 30.0, "window": 60.0, **kw}
    return CircuitBreaker(
        threshold=int(values["threshold"]), cooldown=values["cooldown"], window=values["window"], clock=clock
    )


def test_it_opens_after_the_threshold_of_consecutive_failures() -> None:
    clock = FakeClock(start=0.0)
    guard = breaker(clock)
    for _ in range(2):
        assert guard.allow()
        guard.failed()
    assert state(guard) is BreakerState.CLOSED
    guard.failed()
    assert state(guard) is BreakerState.OPEN
    assert not guard.allow()
    assert guard.retry_after == 30.0


def test_a_success_or_a_long_pause_starts_the_count_again() -> None:
    clock = FakeClock(start=0.0)
    guard = breaker(clock)
    guard.failed()
    guard.failed()
    guard.succeeded()
    guard.failed()
    guard.failed()
    assert state(guard) is BreakerState.CLOSED
    clock.advance(61)  # outside the window: the two failures before no longer count
    guard.failed()
    guard.failed()
    assert state(guard) is BreakerState.CLOSED
    guard.failed()
    assert state(guard) is BreakerState.OPEN


def test_after_the_cooldown_one_trial_goes_through_and_its_success_closes_it() -> None:
    clock = FakeClock(start=0.0)
    guard = breaker(clock, threshold=1)
    guard.failed()
    clock.advance(29.9)
    assert not guard.allow()
    clock.advance(0.1)
    assert state(guard) is BreakerState.HALF_OPEN
    assert guard.allow()  # the trial
    assert not guard.allow()  # everyone else still answers at once
    guard.succeeded()
    assert state(guard) is BreakerState.CLOSED
    assert guard.allow() and guard.allow()


def test_a_failed_trial_opens_it_for_another_cooldown() -> None:
    clock = FakeClock(start=0.0)
    guard = breaker(clock, threshold=1)
    guard.failed()
    clock.advance(30)
    assert guard.allow()
    guard.failed()
    assert state(guard) is BreakerState.OPEN
    assert guard.retry_after == 30.0
    assert not guard.allow()


def test_a_cancelled_trial_lets_the_next_caller_try() -> None:
    clock = FakeClock(start=0.0)
    guard = breaker(clock, threshold=1)
    guard.failed()
    clock.advance(30)
    assert guard.allow()
    guard.released()
    assert guard.allow()


def test_failures_of_calls_started_before_it_opened_do_not_extend_it() -> None:
    clock = FakeClock(start=0.0)
    guard = breaker(clock, threshold=1)
    guard.failed()
    clock.advance(20)
    guard.failed()  # a slow call that was already running
    assert guard.retry_after == pytest.approx(10.0)


def test_it_logs_transitions_not_calls(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(start=0.0)
    guard = breaker(clock, threshold=2)
    with caplog.at_level(logging.INFO, logger="core.breaker"):
        for _ in range(2):
            guard.failed()
        for _ in range(50):
            assert not guard.allow()
        clock.advance(30)
        assert guard.allow()
        guard.succeeded()
        for _ in range(50):
            guard.succeeded()
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "WARNING"]
    assert "open after 2 failures" in caplog.records[0].getMessage()
    assert "closed" in caplog.records[2].getMessage()


@pytest.mark.parametrize("bad", [{"threshold": 0}, {"cooldown": 0}, {"window": -1}])
def test_nonsense_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        breaker(FakeClock(), **bad)
