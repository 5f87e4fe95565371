"""Benchmark 5: time to first visible text on Slack and Teams, after the LLM's first token.

One ``dari serve`` with both doors on; in the load process the stand-in LLM notes when each
tagged answer's first and last chunks leave, and the platform stand-ins note when text
appears: Slack's first ``chat.startStream`` / ``appendStream`` / ``chat.update`` carrying text, Teams'
first ``streaming`` typing activity with text (or the final message if no update came first).
Questions go one at a time, each in a new conversation (and Slack channel), so that
neither pacing between answers nor load is measured, only the door's own path and pacing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.common import Layout, base_env, fmt, free_port, run_json, scratch_dir, table
from bench.overhead import start_server, stop_server

__all__ = ["report", "run"]

# first token (s), content chunks, seconds between chunks
POINTS = ((0.05, 20, 0.01), (0.5, 40, 0.05), (2.0, 40, 0.05))


def run(layout: Layout, *, quick: bool, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options: ``count`` (questions per door and point), ``points`` ((first token, chunks, delay), ...)."""
    options = options or {}
    count = int(options.get("count", 2 if quick else 10))
    points = options.get("points") or (POINTS[:2] if quick else POINTS)
    with scratch_dir("first-text") as workdir:
        llm_port, standins_port = free_port(), free_port()
        server = start_server(
            layout,
            door="slack+teams",
            store="sqlite",
            llm_url=f"http://127.0.0.1:{llm_port}/v1",
            standins_port=standins_port,
            workdir=workdir,
        )
        try:
            spec = {
                "mode": "first_text",
                "url": server.url,
                "doors": ["slack", "teams"],
                "count": count,
                "points": [{"first_token": f, "chunks": n, "chunk_delay": d} for f, n, d in points],
                "standins_port": standins_port,
                "llm_port": llm_port,
            }
            result = run_json("bench.load", spec, env=base_env(layout.repo), cpu=layout.load_cpu, timeout=600)
        finally:
            stop_server(layout, server)
    return {"questions_per_point": count, "rows": result["rows"]}


def report(result: dict[str, Any]) -> str:
    headers = [
        "door",
        "LLM first token s",
        "LLM stream s",
        "first text after 1st token p50 ms",
        "max ms",
        "complete after last token p50 ms",
        "first text after request p50 ms",
    ]
    rows = []
    for r in result["rows"]:
        llm = r["llm"]
        rows.append(
            [
                r["door"],
                fmt(llm["first_token"], 2),
                fmt((llm["chunks"] - 1) * llm["chunk_delay"], 2),
                fmt(r["visible_after_first_token"]["p50"] * 1000, 0),
                fmt(r["visible_after_first_token"]["max"] * 1000, 0),
                fmt(r["complete_after_last_token"]["p50"] * 1000, 0),
                fmt(r["visible_after_request"]["p50"] * 1000, 0),
            ]
        )
    return table(headers, rows)
