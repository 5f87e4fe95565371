"""Profile: where the Kakao door's CPU goes at load (pyinstrument in the server's main thread).

The service runs under bench/serve_probe.py (``dari serve`` plus a probe) on its own core, with
store round trips counted; the load is the overhead benchmark's Kakao load. After the warm-up
the profiler samples the main thread for a few seconds. Samples are attributed to concerns by
the frames on their stack (a sample may count for several: JSON inside logging is both), idle
time in the selector is left out, and shares become milliseconds per answer through the main
thread's measured CPU time. Per-thread CPU comes from /proc (aiosqlite works in its own thread).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import PYTHON, Layout, Process, base_env, fmt, free_port, run_json, scratch_dir, table
from bench.llm import Timing
from bench.overhead import start_server, stop_server

__all__ = ["CONCERNS", "attribute", "run"]

# concern -> (path fragments, function names); a frame matches when its file contains a fragment
# and, if names are given, its function is one of them.
CONCERNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "logging (records, JSON lines, masking of log text)": (("/logging/", "adapters/logs.py"), ()),
    "JSON encode/decode (all callers)": (("/json/",), ()),
    "PII masking (core/safety.py)": (("core/safety.py",), ()),
    "token counting (core/tokens.py, quicktok)": (("core/tokens.py", "quicktok"), ()),
    "prompt building (core/prompt.py, calendar, holidays)": (
        ("core/prompt.py", "core/calendar.py", "holidays/"),
        (),
    ),
    "store calls (core/memory, aiosqlite, redis client)": (("core/memory/", "aiosqlite/", "/redis/"), ()),
    "engine other (locks, summaries, commands)": (
        ("core/engine.py", "core/locks.py", "core/summary.py", "core/background.py", "core/commands.py"),
        (),
    ),
    "LLM client (openai, httpx, SSE, chunk models)": (("/openai/", "/httpx", "/httpcore", "/anyio/"), ()),
    "pydantic validation (all callers)": (("/pydantic/", "/pydantic_core/"), ()),
    "Kakao door (handler, translate, markdown, callback)": (("adapters/kakao/",), ()),
    "aiohttp server and client (HTTP parsing, responses)": (("/aiohttp/",), ()),
    "middleware, metrics, access log": (
        ("adapters/middleware.py", "adapters/metrics.py", "prometheus_client"),
        (),
    ),
}
DUMP = os.environ.get("DARI_BENCH_PROFILE_DUMP", "")  # a file for the raw samples, when set
_IDLE = (("selectors.py", ("select", "poll")), ("<built-in>", ("select", "poll", "epoll.poll")))


def _frame(identifier: str) -> tuple[str, str]:
    function, _, rest = identifier.partition("\x00")
    path = rest.split("\x00", 1)[0]
    return function, path


def _idle(stack: list[str]) -> bool:
    function, path = _frame(stack[-1])
    return any(fragment in path and function in names for fragment, names in _IDLE)


def _callback(frames: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The frames of the callback the event loop is running (run_app and the loop itself cut off)."""
    for index in range(len(frames) - 1, -1, -1):
        function, path = frames[index]
        if function == "_run" and path.endswith("asyncio/events.py"):
            return frames[index + 1 :]
    return frames


def attribute(records: list[list[Any]]) -> dict[str, Any]:
    """Busy seconds per concern (inclusive) and the innermost non-library frames that cost most."""
    busy = 0.0
    idle = 0.0
    concerns: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for stack, seconds in records:
        if _idle(stack):
            idle += seconds
            continue
        busy += seconds
        frames = _callback([_frame(f) for f in stack])
        for concern, (fragments, names) in CONCERNS.items():
            if any(any(fr in path for fr in fragments) and (not names or fn in names) for fn, path in frames):
                concerns[concern] += seconds
        # The innermost frame of our own code: which of dari's functions the time is spent under.
        for function, path in reversed(frames):
            if "/core/" in path or "/adapters/" in path:
                short = path.split("/core/")[-1] if "/core/" in path else path.split("/adapters/")[-1]
                prefix = "core/" if "/core/" in path else "adapters/"
                own[f"{prefix}{short}:{function}"] += seconds
                break
    return {
        "busy_seconds": busy,
        "idle_seconds": idle,
        "concerns": dict(concerns.most_common()),
        "own_functions": dict(own.most_common(15)),
    }


def _post(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=120) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds per thread of a process: "main" and the others by name and id."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        label = "main" if task.name == str(pid) else f"{name}-{task.name}"
        found[label] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def _one(layout: Layout, *, store: str, llm_url: str, workdir: Path, quick: bool) -> dict[str, Any]:
    warmup, window = (1.5, 3.0) if quick else (3.0, 8.0)
    concurrency = 32
    standins_port = free_port()
    server = start_server(
        layout,
        door="kakao",
        store=store,
        llm_url=llm_url,
        standins_port=standins_port,
        workdir=workdir,
        module="bench.serve_probe",
        extra_env={"DARI_BENCH_COUNT_STORE": "1"},
    )
    try:
        spec = {
            "door": "kakao",
            "url": server.url,
            "mode": "closed",
            "concurrency": concurrency,
            "warmup": warmup,
            "duration": window + 1.0,
            "turns": 5,
            "timeout": 30.0,
            "standins_port": standins_port,
            "pids": {"server": server.process.pid},
        }
        outcome: dict[str, Any] = {}

        def load() -> None:
            outcome.update(
                run_json("bench.load", spec, env=base_env(layout.repo), cpu=layout.load_cpu, timeout=120)
            )

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(warmup + 0.3)  # start profiling inside the load's measured window
        before = _get(f"{server.url}/bench/probe")
        threads_before = _threads(server.process.pid)
        _post(f"{server.url}/bench/profile/start")
        time.sleep(window)
        profile = _post(f"{server.url}/bench/profile/stop")
        if DUMP:
            Path(DUMP).write_text(json.dumps(profile["records"]), encoding="utf-8")
        after = _get(f"{server.url}/bench/probe")
        threads_after = _threads(server.process.pid)
        thread.join()
    finally:
        stop_server(layout, server)
    answers_per_s = outcome["throughput"]
    answers = answers_per_s * profile["duration"]
    trips = {
        k: (after["round_trips"][k] - before["round_trips"][k]) / max(answers, 1) for k in ("sqlite", "redis")
    }
    threads = {name: threads_after.get(name, 0.0) - threads_before.get(name, 0.0) for name in threads_after}
    main_cpu = threads.get("main", 0.0)
    found = attribute(profile["records"])
    busy = found["busy_seconds"] or 1.0
    per_answer = {
        concern: 1000 * main_cpu * seconds / busy / max(answers, 1)
        for concern, seconds in found["concerns"].items()
    }
    return {
        "store": store,
        "concurrency": concurrency,
        "profile_seconds": profile["duration"],
        "samples": profile["sample_count"],
        "answers_per_s_while_profiled": answers_per_s,
        "thread_cpu_seconds": threads,
        "main_thread_cpu_ms_per_answer": 1000 * main_cpu / max(answers, 1),
        "busy_share": busy / (busy + found["idle_seconds"]),
        "concern_share": {k: v / busy for k, v in found["concerns"].items()},
        "concern_ms_per_answer": per_answer,
        "own_functions_share": {k: v / busy for k, v in found["own_functions"].items()},
        "store_round_trips_per_answer": trips,
        "load": {k: outcome[k] for k in ("answers", "statuses", "latency")},
    }


def run(layout: Layout, *, quick: bool, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Options: ``stores`` (default sqlite and redis)."""
    stores = list((options or {}).get("stores") or ("sqlite", "redis"))
    timing = Timing(first_token=0.05, chunks=20, chunk_delay=0.01)
    rows = []
    with scratch_dir("profile") as workdir:
        llm_port = free_port()
        cmd = [PYTHON, "-m", "bench.llm", "--port", str(llm_port)]
        with Process(cmd, env=base_env(layout.repo), cpu=layout.load_cpu, log=workdir / "llm.log") as llm:
            llm.wait_http(f"http://127.0.0.1:{llm_port}/bench/stats")
            for store in stores:
                print(f"  profile: kakao/{store}", flush=True)
                rows.append(
                    _one(
                        layout,
                        store=store,
                        llm_url=f"http://127.0.0.1:{llm_port}/v1",
                        workdir=workdir,
                        quick=quick,
                    )
                )
    return {"llm": {"first_token": timing.first_token, "chunks": timing.chunks}, "rows": rows}


def report(result: dict[str, Any]) -> str:
    parts = []
    for row in result["rows"]:
        head = (
            f"kakao/{row['store']}: main thread "
            f"{row['main_thread_cpu_ms_per_answer']:.2f} ms CPU per answer, "
            f"busy {row['busy_share']:.0%}; store round trips per answer: "
            f"sqlite {row['store_round_trips_per_answer']['sqlite']:.1f}, "
            f"redis {row['store_round_trips_per_answer']['redis']:.1f}; "
            f"threads {', '.join(f'{k} {v:.2f}s' for k, v in row['thread_cpu_seconds'].items() if v > 0.01)}"
        )
        rows = [
            [concern, f"{row['concern_share'][concern]:.1%}", fmt(ms, 2)]
            for concern, ms in sorted(row["concern_ms_per_answer"].items(), key=lambda kv: -kv[1])
        ]
        own = [[name, f"{share:.1%}", ""] for name, share in list(row["own_functions_share"].items())[:10]]
        parts.append(head + "\n" + table(["concern (inclusive)", "share of busy", "ms/answer"], rows + own))
    return "\n\n".join(parts)
