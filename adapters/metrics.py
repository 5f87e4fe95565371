"""Prometheus metrics, one registry per application so tests and workers never collide."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from core.observer import LLMCall, Outcome

__all__ = ["METRICS", "Metrics", "metrics_handler"]

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 8, 12, 20, 30, 60)
_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)


class Metrics:
    """The service's series; also the engine's Observer.

    Labels are bounded (platform, outcome, kind, direction, mode); never ids or text.
    """

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.messages = Counter(
            "dari_messages_total",
            "Messages handled by the engine, by platform and outcome",
            ["platform", "outcome"],
            registry=registry,
        )
        self.answer_seconds = Histogram(
            "dari_answer_seconds",
            "Time from a message's arrival to the end of its answer",
            ["platform"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.llm_seconds = Histogram(
            "dari_llm_seconds", "Duration of LLM calls", buckets=_LATENCY_BUCKETS, registry=registry
        )
        self.llm_first_token_seconds = Histogram(
            "dari_llm_first_token_seconds",
            "Time from an LLM request to its first token",
            buckets=_FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.llm_tokens = Counter(
            "dari_llm_tokens_total",
            "LLM tokens, in (prompt) and out (answer)",
            ["direction"],
            registry=registry,
        )
        self.dedupe_hits = Counter(
            "dari_dedupe_hits_total", "Messages dropped as duplicates", ["platform"], registry=registry
        )
        self.rate_limited = Counter(
            "dari_rate_limited_total", "Messages refused by a rate limit", ["scope"], registry=registry
        )
        self.queue_depth = Gauge(
            "dari_queue_depth", "Answers accepted and not finished yet", registry=registry
        )
        self.kakao_deliveries = Counter(
            "dari_kakao_deliveries_total",
            "How Kakao answers were delivered: inline, callback or pending (next message)",
            ["mode"],
            registry=registry,
        )
        self.kakao_callbacks = Counter(
            "dari_kakao_callbacks_total", "Kakao callback POSTs, by outcome", ["outcome"], registry=registry
        )
        self.errors = Counter("dari_errors_total", "Errors, by kind", ["kind"], registry=registry)
        self.llm_circuit = Gauge(
            "dari_llm_circuit_state",
            "The LLM circuit breaker: 1 for its current state (closed, open, half-open)",
            ["state"],
            registry=registry,
        )
        self.jobs = Counter(
            "dari_jobs_total",
            "Accepted messages as jobs: recorded (durably), unrecorded (Redis away: answered without"
            " durability), held (waited in the process for Redis to return), taken_over (from a"
            " process that stopped), lease_lost, dropped",
            ["event"],
            registry=registry,
        )
        self.jobs_running = Gauge(
            "dari_jobs_running",
            "Jobs this process holds (running or waiting for their turn)",
            registry=registry,
        )
        self.store_degraded = Gauge(
            "dari_store_degraded",
            "1 while the shared store (Redis) is unreachable and answers go on without it",
            registry=registry,
        )

    def track_queue(self, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the queue depth at every scrape."""
        self.queue_depth.set_function(lambda: float(depth()))

    def track_jobs(self, running: Callable[[], int]) -> None:
        """Report ``running()`` as the jobs held at every scrape."""
        self.jobs_running.set_function(lambda: float(running()))

    def job(self, event: str) -> None:
        """Count a job event (``Worker``'s ``events``)."""
        self.jobs.labels(event).inc()

    def track_breaker(self, state: Callable[[], str]) -> None:
        """Report the breaker's ``state()`` at every scrape."""

        def is_now(name: str) -> Callable[[], float]:
            return lambda: float(state() == name)

        for name in ("closed", "open", "half-open"):
            self.llm_circuit.labels(name).set_function(is_now(name))

    def track_store(self, degraded: Callable[[], bool]) -> None:
        """Report ``degraded()`` at every scrape."""
        self.store_degraded.set_function(lambda: float(degraded()))

    # -- the engine's Observer ------------------------------------------------------------------

    def message(self, platform: str, outcome: Outcome, *, seconds: float, scope: str = "") -> None:
        self.messages.labels(platform, outcome).inc()
        if outcome == "duplicate":
            self.dedupe_hits.labels(platform).inc()
        elif outcome == "limited":
            self.rate_limited.labels(scope or "user").inc()
        else:
            self.answer_seconds.labels(platform).observe(seconds)

    def llm_call(self, call: LLMCall) -> None:
        self.llm_seconds.observe(call.seconds)
        if call.first_token_seconds is not None:
            self.llm_first_token_seconds.observe(call.first_token_seconds)
        self.llm_tokens.labels("in").inc(call.tokens_in)
        self.llm_tokens.labels("out").inc(call.tokens_out)
        if call.error:
            self.errors.labels(call.error).inc()

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()


METRICS = web.AppKey("metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
