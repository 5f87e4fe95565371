"""Benchmark 1: each door against the floor, side by side in one run.

Every server runs as its own subprocess pinned to one core (``dari serve`` exactly as an
operator starts it, with memory and PII masking on; the floor as ``python -m bench.floor``); the
stand-in LLM and the load generator share the other core. Same LLM timing, same concurrency,
same questions. Reported per door: answers/s, p50/p99 latency, server CPU per answer, and the
ratios to the floor: throughput at this concurrency, and capacity (floor CPU per answer / door
CPU per answer: what one core sustains once it is the bottleneck).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    Layout,
    Process,
    base_env,
    dari_env,
    delete_redis_prefix,
    fmt,
    free_port,
    run_json,
    scratch_dir,
    table,
)
from bench.doors import SLACK_SECRET, SLACK_TOKEN
from bench.llm import Timing

__all__ = ["VARIANTS", "Server", "run", "start_server"]

# (door, store); the floor has no store.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("floor", "-"),
    ("floor", "lean"),
    ("kakao", "sqlite"),
    ("kakao", "redis"),
    ("slack", "sqlite"),
    ("slack", "redis"),
    ("teams", "sqlite"),
    ("teams", "redis"),
)


@dataclass(frozen=True, slots=True)
class Server:
    process: Process
    url: str
    prefix: str | None


def start_server(
    layout: Layout,
    *,
    door: str,
    store: str,
    llm_url: str,
    standins_port: int,
    workdir: Path,
    module: str = "adapters.cli",
    extra_env: dict[str, str] | None = None,
) -> Server:
    """Start the floor or ``dari serve`` (``module`` may be a wrapper such as bench.serve_probe)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"{door}-{store}-{port}.log"
    if door == "floor":
        cmd = [PYTHON, "-m", "bench.floor", "--port", str(port), "--llm", llm_url]
        cmd += ["--lean"] if store == "lean" else []
        process = Process(cmd, env=base_env(layout.repo), cpu=layout.server_cpu, log=log)
        process.wait_http(f"{url}/healthz")
        return Server(process, url, None)
    data = workdir / f"data-{port}"
    data.mkdir()
    prefix = f"dari-bench-{uuid.uuid4().hex[:10]}" if store == "redis" else None
    env = dari_env(
        layout,
        llm_url=llm_url,
        data_dir=data,
        redis_prefix=prefix,
        extra={
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "SLACK_API_URL": f"http://127.0.0.1:{standins_port}/api/",
            "DARI_KAKAO_CALLBACK_DOMAIN": "*",
            **(extra_env or {}),
        },
    )
    cmd = [PYTHON, "-m", module, "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = Process(cmd, env=env, cpu=layout.server_cpu, log=log, cwd=data)
    process.wait_http(f"{url}/healthz")
    return Server(process, url, prefix)


def stop_server(layout: Layout, server: Server) -> None:
    server.process.stop()
    if server.prefix is not None:
        delete_redis_prefix(layout.redis_url, server.prefix)


def _measure(
    layout: Layout,
    *,
    door: str,
    store: str,
    concurrency: int,
    llm: Process,
    llm_url: str,
    workdir: Path,
    warmup: float,
    duration: float,
    turns: int,
) -> dict[str, Any]:
    standins_port = free_port()
    server = start_server(
        layout, door=door, store=store, llm_url=llm_url, standins_port=standins_port, workdir=workdir
    )
    try:
        spec = {
            "door": door,
            "url": server.url,
            "mode": "closed",
            "concurrency": concurrency,
            "warmup": warmup,
            "duration": duration,
            "turns": turns,
            "timeout": 30.0,
            "standins_port": standins_port,
            "pids": {"server": server.process.pid, "llm": llm.pid},
        }
        result = run_json(
            "bench.load", spec, env=base_env(layout.repo), cpu=layout.load_cpu, timeout=warmup + duration + 90
        )
    finally:
        stop_server(layout, server)
    usage = result["usage"]
    answers = max(result["answers"], 1)
    result.update(
        store=store,
        concurrency=concurrency,
        server_cpu_ms_per_answer=1000 * usage["cpu"]["server"] / answers,
        server_cpu_util=usage["cpu"]["server"] / usage["seconds"],
        llm_cpu_util=usage["cpu"]["llm"] / usage["seconds"],
        load_cpu_util=usage["load_cpu"] / usage["seconds"],
    )
    return result


def run(layout: Layout, *, quick: bool, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options: ``variants`` ("floor", "kakao/sqlite", ...), ``concurrency`` (a list), ``warmup``,
    ``duration``."""
    options = options or {}
    timing = Timing(first_token=0.05, chunks=20, chunk_delay=0.01)
    levels = list(options.get("concurrency") or ([32] if quick else [16, 64]))
    warmup, duration, turns = (1.0, 2.5, 5) if quick else (3.0, 10.0, 5)
    warmup = float(options.get("warmup", warmup))
    duration = float(options.get("duration", duration))
    chosen = options.get("variants")
    variants = [v for v in VARIANTS if not chosen or f"{v[0]}/{v[1]}" in chosen or v[0] in chosen]
    rows: list[dict[str, Any]] = []
    with scratch_dir("overhead") as workdir:
        llm_port = free_port()
        cmd = [PYTHON, "-m", "bench.llm", "--port", str(llm_port), "--first-token", str(timing.first_token)]
        cmd += ["--chunks", str(timing.chunks), "--chunk-delay", str(timing.chunk_delay)]
        with Process(cmd, env=base_env(layout.repo), cpu=layout.load_cpu, log=workdir / "llm.log") as llm:
            llm.wait_http(f"http://127.0.0.1:{llm_port}/bench/stats")
            llm_url = f"http://127.0.0.1:{llm_port}/v1"
            for concurrency in levels:
                for door, store in variants:
                    print(f"  overhead: {door}/{store} at {concurrency} in flight", flush=True)
                    rows.append(
                        _measure(
                            layout,
                            door=door,
                            store=store,
                            concurrency=concurrency,
                            llm=llm,
                            llm_url=llm_url,
                            workdir=workdir,
                            warmup=warmup,
                            duration=duration,
                            turns=turns,
                        )
                    )
    for row in rows:
        floor = next(
            (
                r
                for r in rows
                if (r["door"], r["store"]) == ("floor", "-") and r["concurrency"] == row["concurrency"]
            ),
            None,
        )
        if floor is None or not floor["throughput"] or not row["server_cpu_ms_per_answer"]:
            row["throughput_ratio"] = row["capacity_ratio"] = float("nan")
            continue
        row["throughput_ratio"] = row["throughput"] / floor["throughput"]
        row["capacity_ratio"] = floor["server_cpu_ms_per_answer"] / row["server_cpu_ms_per_answer"]
    return {
        "llm": asdict(timing) | {"answer": len(timing.answer)},
        "warmup_s": warmup,
        "duration_s": duration,
        "turns_per_conversation": turns,
        "rows": rows,
    }


def report(result: dict[str, Any]) -> str:
    headers = [
        "in flight",
        "door",
        "store",
        "answers/s",
        "x floor",
        "p50 ms",
        "p99 ms",
        "CPU ms/answer",
        "capacity x floor",
        "server CPU",
        "not answered",
        "other CPU",
    ]
    rows = []
    for r in result["rows"]:
        latency = r["latency"]
        missed = r["count"] - r["answers"]
        rows.append(
            [
                r["concurrency"],
                r["door"],
                r["store"],
                fmt(r["throughput"]),
                fmt(r["throughput_ratio"], 2),
                fmt(latency["p50"] * 1000, 0),
                fmt(latency["p99"] * 1000, 0),
                fmt(r["server_cpu_ms_per_answer"], 2),
                fmt(r["capacity_ratio"], 2),
                f"{r['server_cpu_util']:.0%}",
                missed,
                f"{r['usage']['other_cpu'] / r['usage']['seconds']:.0%}",
            ]
        )
    return table(headers, rows)
