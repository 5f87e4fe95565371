"""Benchmark 4: Kakao's 5 seconds. What share of questions is answered in time, inline or by callback?

One ``dari serve`` (embedded store, callback URLs allowed on loopback with
``DARI_KAKAO_CALLBACK_DOMAIN=*``) and, in the load process, the stand-in LLM and a Kakao callback
receiver. For each LLM latency (time to the whole answer), ``count`` users ask at once with a
callback URL and ``count`` without. Without a callback, a slow answer is kept and given first on
the user's next message; the benchmark writes again once the answer must be ready and checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.common import Layout, base_env, fmt, free_port, run_json, scratch_dir, table
from bench.llm import Timing
from bench.overhead import start_server, stop_server

__all__ = ["report", "run"]


def run(layout: Layout, *, quick: bool, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options: ``latencies`` (LLM seconds per point), ``count`` (users per point and callback kind)."""
    options = options or {}
    latencies, count = ([1.0, 4.0], 5) if quick else ([1.0, 4.0, 8.0, 30.0], 20)
    latencies = [float(x) for x in options.get("latencies", latencies)]
    count = int(options.get("count", count))
    points = [
        {"first_token": t.first_token, "chunks": t.chunks, "chunk_delay": t.chunk_delay}
        for t in (Timing.lasting(seconds) for seconds in latencies)
    ]
    with scratch_dir("deadline") as workdir:
        llm_port, standins_port = free_port(), free_port()
        server = start_server(
            layout,
            door="kakao",
            store="sqlite",
            llm_url=f"http://127.0.0.1:{llm_port}/v1",
            standins_port=standins_port,
            workdir=workdir,
        )
        try:
            spec = {
                "mode": "deadline",
                "url": server.url,
                "count": count,
                "points": points,
                "follow_up_after": 1.0,
                "standins_port": standins_port,
                "llm_port": llm_port,
            }
            budget = sum(latencies) * 2 + 60 * len(latencies)
            result = run_json(
                "bench.load", spec, env=base_env(layout.repo), cpu=layout.load_cpu, timeout=budget
            )
        finally:
            stop_server(layout, server)
    return {"requests_per_point": count, "points": result["points"]}


def report(result: dict[str, Any]) -> str:
    headers = [
        "LLM s",
        "callback URL",
        "HTTP reply <= 5 s",
        "answer <= 5 s",
        "answer <= 60 s",
        "how",
        "answer p50 s",
        "still working",
        "given on next message",
    ]
    rows = []
    for point in result["points"]:
        for label, key in (("yes", "callback"), ("no", "no_callback")):
            s = point[key]
            rows.append(
                [
                    fmt(point["llm_seconds"], 0),
                    label,
                    f"{s['responded_within_5s']:.0%}",
                    f"{s['answered_within_5s']:.0%}",
                    f"{s['answered_within_60s']:.0%}",
                    ", ".join(f"{k} {v}" for k, v in s["via"].items()) or "-",
                    fmt(s["answer_s"]["p50"], 2),
                    s["fallbacks"],
                    f"{s['answered_on_next_message']}/{s['fallbacks']}" if s["fallbacks"] else "-",
                ]
            )
    return table(headers, rows)
