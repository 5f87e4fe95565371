"""``dari serve`` with a probe: event-loop lag sampling and, on request, a profiler. Benchmarks only.

It starts the service exactly as ``dari serve`` does (settings from the environment, JSON
logging, ``create_app``, ``web.run_app`` with ``RUNNER_OPTIONS``) and adds to the application:

- a task that sleeps ``LAG_INTERVAL`` seconds over and over and records how late it wakes up
  (the event loop's lag: how long a ready callback waited behind others);
- ``GET /bench/probe[?reset=1]``: lag percentiles since the last reset, tasks alive, RSS;
- ``POST /bench/profile/start`` and ``POST /bench/profile/stop`` (pyinstrument, main thread):
  stop answers with the sampled stacks as JSON for bench/profile.py to attribute.

Run: ``python -m bench.serve_probe serve --host 127.0.0.1 --port 8300`` (the same arguments as dari serve).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from adapters.logs import configure_logging
from adapters.server import RUNNER_OPTIONS, create_app
from adapters.settings import Settings
from bench.common import summarize

__all__ = ["LAG_INTERVAL", "add_probe"]

LAG_INTERVAL = 0.01
_LAGS = web.AppKey("bench_lags", list)
_PROFILER = web.AppKey("bench_profiler", dict)


def _secrets(settings: Settings) -> list[str]:
    try:  # the CLI's own list, so that log masking costs what it costs in production
        from adapters.cli import _secrets as cli_secrets
    except ImportError:
        return []
    found: list[str] = cli_secrets(settings)
    return found


async def _sample(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(LAG_INTERVAL)
        lags.append(loop.time() - started - LAG_INTERVAL)


# Store round trips, counted only when DARI_BENCH_COUNT_STORE=1 (the profile benchmark).
_ROUND_TRIPS = {"sqlite": 0, "redis": 0}


def count_store_round_trips() -> None:
    """Count every call into aiosqlite's worker thread and every command (or pipeline) sent to Redis."""
    import aiosqlite.core
    from redis.asyncio.connection import AbstractConnection

    execute: Callable[..., Awaitable[Any]] = aiosqlite.core.Connection._execute
    send = AbstractConnection.send_packed_command

    async def counted_execute(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        _ROUND_TRIPS["sqlite"] += 1
        return await execute(self, fn, *args, **kwargs)

    async def counted_send(self: Any, command: Any, check_health: bool = True) -> None:
        _ROUND_TRIPS["redis"] += 1
        await send(self, command, check_health)

    aiosqlite.core.Connection._execute = counted_execute  # type: ignore[method-assign]
    AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign]


async def probe(request: web.Request) -> web.Response:
    lags: list[float] = request.app[_LAGS]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    body = {
        "lag": {"samples": len(lags), **{k: v * 1000 for k, v in summarize(lags).items()}},
        "tasks": len(asyncio.all_tasks()),
        "rss": _rss(),
        "cpu": usage.ru_utime + usage.ru_stime,
        "round_trips": dict(_ROUND_TRIPS),
    }
    if request.query.get("reset") == "1":
        lags.clear()
    return web.json_response(body)


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def profile_start(request: web.Request) -> web.Response:
    from pyinstrument import Profiler

    state: dict[str, Any] = request.app[_PROFILER]
    interval = float(request.query.get("interval", "0.0005"))
    profiler = Profiler(interval=interval, async_mode="disabled")
    profiler.start()
    state["profiler"] = profiler
    return web.json_response({"started": True, "interval": interval})


async def profile_stop(request: web.Request) -> web.Response:
    state: dict[str, Any] = request.app[_PROFILER]
    profiler = state.pop("profiler", None)
    if profiler is None:
        return web.json_response({"error": "not started"}, status=409)
    session = profiler.stop()
    # Each record: the stack (outermost first) as "function\x00file\x00line" ids, and its seconds.
    records = [[list(stack), seconds] for stack, seconds in session.frame_records]
    return web.json_response(
        {"duration": session.duration, "sample_count": session.sample_count, "records": records}
    )


def add_probe(app: web.Application) -> None:
    app[_LAGS] = []
    app[_PROFILER] = {}

    async def sampler(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_sample(app[_LAGS]))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(sampler)
    app.router.add_get("/bench/probe", probe)
    app.router.add_post("/bench/profile/start", profile_start)
    app.router.add_post("/bench/profile/stop", profile_stop)


def main() -> int:
    parser = argparse.ArgumentParser(description="dari serve with a benchmark probe")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3978)
    args = parser.parse_args()
    if os.environ.get("DARI_BENCH_COUNT_STORE") == "1":
        count_store_round_trips()
    settings = Settings()
    configure_logging(level=settings.log_level, secrets=_secrets(settings))
    app = create_app(settings)
    add_probe(app)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log_class=RUNNER_OPTIONS["access_log_class"],
        print=None,
        shutdown_timeout=30.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
