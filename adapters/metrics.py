"""Prometheus metrics, one registry per application so tests and workers never collide."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["METRICS", "Metrics", "metrics_handler"]

_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 8, 12, 20, 30, 60)


class Metrics:
    """The service's series. Labels are bounded: platform, outcome, kind; never ids or text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "dari_messages_total",
            "Messages received, by platform and outcome",
            ["platform", "outcome"],
            registry=self.registry,
        )
        self.answer_seconds = Histogram(
            "dari_answer_seconds",
            "Time from receiving a message to its complete answer",
            ["platform"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.kakao_callbacks = Counter(
            "dari_kakao_callbacks_total",
            "Kakao callback deliveries, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.errors = Counter("dari_errors_total", "Errors, by kind", ["kind"], registry=self.registry)


METRICS = web.AppKey("metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
