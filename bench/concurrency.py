"""Benchmark 2: 1, 10, 100 and 1,000 conversations in flight with a 2-second LLM (Kakao door).

For each level a fresh service runs under bench/serve_probe.py (``dari serve`` plus an event-loop
lag sampler) on its own core, embedded store, memory and masking on. The load process sends
``N`` questions at once, each from its own user, in two waves (the second continues the same
conversations). Reported per level: answers, "still working" fallbacks (the 3.5 s inline
budget missed) and errors; latency; event-loop lag while the wave ran; RSS growth per
conversation in flight (first wave, read 1 s in, while every answer waits on the LLM); server
CPU per message net of the idle process's own (the lag sampler ticks 100 times a second). Ten
questions warm the service up first; CPU is read from /proc in 10 ms ticks, so it is coarse at 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.common import PYTHON, Layout, Process, base_env, fmt, free_port, run_json, scratch_dir, table
from bench.llm import Timing
from bench.overhead import start_server, stop_server

__all__ = ["report", "run"]


def run(layout: Layout, *, quick: bool, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options: ``levels`` (conversations in flight), ``store`` ("sqlite" or "redis"), ``llm_seconds``,
    ``waves``, ``mid`` (seconds into a wave for the RSS reading), ``warmup_questions``."""
    options = options or {}
    levels = list(options.get("levels") or ([1, 10, 100] if quick else [1, 10, 100, 1000]))
    store = str(options.get("store", "sqlite"))
    timing = Timing.lasting(float(options.get("llm_seconds", 2.0)))
    rows = []
    with scratch_dir("concurrency") as workdir:
        llm_port = free_port()
        cmd = [PYTHON, "-m", "bench.llm", "--port", str(llm_port), "--first-token", str(timing.first_token)]
        cmd += ["--chunks", str(timing.chunks), "--chunk-delay", str(timing.chunk_delay)]
        with Process(cmd, env=base_env(layout.repo), cpu=layout.load_cpu, log=workdir / "llm.log") as llm:
            llm.wait_http(f"http://127.0.0.1:{llm_port}/bench/stats")
            for level in levels:
                print(f"  concurrency: {level} in flight", flush=True)
                standins_port = free_port()
                server = start_server(
                    layout,
                    door="kakao",
                    store=store,
                    llm_url=f"http://127.0.0.1:{llm_port}/v1",
                    standins_port=standins_port,
                    workdir=workdir,
                    module="bench.serve_probe",
                )
                try:
                    spec = {
                        "door": "kakao",
                        "url": server.url,
                        "mode": "wave",
                        "concurrency": level,
                        "waves": int(options.get("waves", 1 if quick else 2)),
                        "mid": float(options.get("mid", 1.0)),
                        "warmup_questions": int(options.get("warmup_questions", 10)),
                        "timeout": 30.0,
                        "probe": f"{server.url}/bench/probe",
                        "standins_port": standins_port,
                        "pids": {"server": server.process.pid, "llm": llm.pid},
                    }
                    result = run_json(
                        "bench.load", spec, env=base_env(layout.repo), cpu=layout.load_cpu, timeout=180
                    )
                finally:
                    stop_server(layout, server)
                first, second = result["waves"][0], result["waves"][-1]
                rss_growth = first["rss_during"]["server"] - first["usage"]["rss_before"]["server"]
                rows.append(
                    {
                        "conversations": level,
                        "waves": result["waves"],
                        "rss_before_mib": first["usage"]["rss_before"]["server"] / 2**20,
                        "rss_per_conversation_kib": rss_growth / level / 1024,
                        "cpu_ms_per_message": 1000 * second["usage"]["net_cpu"]["server"] / level,
                        "cpu_ms_per_message_first_wave": 1000 * first["usage"]["net_cpu"]["server"] / level,
                        "idle_cpu_per_s": result["idle_cpu_per_s"]["server"],
                    }
                )
    return {"store": store, "llm": {"seconds": timing.total, "chunks": timing.chunks}, "rows": rows}


def report(result: dict[str, Any]) -> str:
    headers = [
        "in flight",
        "wave",
        "answered",
        "still working",
        "errors",
        "p50 s",
        "p99 s",
        "loop lag p50/p99/max ms",
        "tasks",
        "RSS KiB/conv",
        "CPU ms/msg",
    ]
    rows = []
    for r in result["rows"]:
        for number, wave in enumerate(r["waves"], 1):
            statuses = wave["statuses"]
            errors = sum(v for k, v in statuses.items() if k.startswith("error"))
            lag = wave["lag"] or {}
            rows.append(
                [
                    r["conversations"],
                    number,
                    wave["answers"],
                    statuses.get("fallback", 0),
                    errors,
                    fmt(wave["latency"]["p50"], 2),
                    fmt(wave["latency"]["p99"], 2),
                    f"{fmt(lag.get('p50', float('nan')), 1)}/{fmt(lag.get('p99', float('nan')), 0)}"
                    f"/{fmt(lag.get('max', float('nan')), 0)}",
                    wave.get("tasks_during", "-"),
                    fmt(r["rss_per_conversation_kib"], 0) if number == 1 else "",
                    fmt(1000 * wave["usage"]["net_cpu"]["server"] / r["conversations"], 2),
                ]
            )
    return table(headers, rows)
