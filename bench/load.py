"""The load generator: its own process (and core), an aiohttp client, bounded in time and count.

``python -m bench.load SPEC_JSON`` prints one JSON object. The spec:

- ``door``: floor, kakao, slack or teams; ``url``: the server's base URL.
- ``mode``: ``closed`` (``concurrency`` workers, each asking again as soon as it has its answer,
  ``warmup`` then ``duration`` seconds; throughput counts answers completed in the window) or
  ``wave`` (``waves`` rounds of ``concurrency`` questions sent at once, each a new conversation
  turn; ``probe`` URL read before, during and after each wave).
- ``turns``: questions per conversation before a worker starts a new one (history grows within).
- ``standins_port``: where to serve the Slack / Bot Connector / Kakao callback stand-ins.
- ``callback``: Kakao requests carry a callback URL.
- ``pids``: name -> process id whose CPU time (and RSS) is read at the window's edges.
- ``timeout``: seconds one answer may take before it counts as an error.
- ``llm_port`` (optional): serve the stand-in LLM in this process, recording when each tagged
  answer's first and last chunks left. Modes ``deadline`` and ``first_text`` use it: each of
  their ``points`` sets the LLM's timing, then asks ``count`` questions.
- ``deadline``: per point, ``count`` Kakao questions at once with a callback URL and ``count``
  without; for each answered "still working", the same user writes again once the answer must be
  ready (``follow_up_after`` seconds), and the reply is checked for the earlier answer.
- ``first_text``: per door in ``doors`` and per point, ``count`` questions one after the other,
  each in a new conversation: first visible text and complete answer against the LLM's chunks.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import aiohttp

from bench.common import busy_cpu_seconds, proc_cpu_seconds, proc_rss_bytes, summarize
from bench.doors import Driver, Kakao, Outcome, make_driver, message_text
from bench.llm import MARKER, StandInLLM, Timing, tag_for
from bench.standins import StandIns

__all__ = ["main"]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reading(pids: Mapping[str, int]) -> dict[str, Any]:
    cpu = {name: proc_cpu_seconds(pid) for name, pid in pids.items()}
    rss = {name: proc_rss_bytes(pid) for name, pid in pids.items()}
    return {"at": time.monotonic(), "cpu": cpu, "rss": rss, "load": _own_cpu(), "machine": busy_cpu_seconds()}


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """CPU seconds spent by each process, by this load generator and by the whole machine."""
    span = after["at"] - before["at"]
    cpu = {name: after["cpu"][name] - before["cpu"][name] for name in after["cpu"]}
    ours = sum(cpu.values()) + after["load"] - before["load"]
    machine = after["machine"] - before["machine"]
    return {
        "seconds": span,
        "cpu": cpu,
        "load_cpu": after["load"] - before["load"],
        # Everything else the machine did meanwhile (other people's tests, Redis): noise to report.
        "other_cpu": max(machine - ours, 0.0),
        "rss_before": before["rss"],
        "rss_after": after["rss"],
    }


def _outcomes(outcomes: list[Outcome]) -> dict[str, Any]:
    answers = [o for o in outcomes if o.status == "answer"]
    visible = [o.visible - o.started for o in answers if o.visible is not None]
    responded = [o.responded - o.started for o in outcomes if o.responded is not None]
    return {
        "count": len(outcomes),
        "answers": len(answers),
        "statuses": dict(Counter(o.status for o in outcomes)),
        "via": dict(Counter(o.via for o in answers)),
        "latency": summarize([o.latency for o in answers]),
        "visible": summarize(visible),
        "responded": summarize(responded),
    }


async def _closed(driver: Driver, spec: Mapping[str, Any]) -> dict[str, Any]:
    concurrency, turns = int(spec["concurrency"]), int(spec.get("turns", 5))
    run = uuid.uuid4().hex[:6]
    start = time.monotonic()
    window_start = start + float(spec["warmup"])
    window_end = window_start + float(spec["duration"])
    done: list[Outcome] = []

    async def worker(slot: int) -> None:
        n = 0
        while time.monotonic() < window_end:
            outcome = await driver.ask(f"{run}-{slot}-{n // turns}", n % turns, message_text(slot + n))
            done.append(outcome)
            n += 1

    pids = spec.get("pids", {})
    workers = [asyncio.create_task(worker(slot)) for slot in range(concurrency)]
    await asyncio.sleep(max(window_start - time.monotonic(), 0))  # schedules a reading, asserts nothing
    before = _reading(pids)
    await asyncio.sleep(max(window_end - time.monotonic(), 0))
    after = _reading(pids)
    await asyncio.gather(*workers)
    in_window = [o for o in done if window_start <= o.finished <= window_end]
    result = _outcomes(in_window)
    result["throughput"] = result["answers"] / (window_end - window_start)
    result["usage"] = _delta(before, after)
    result["errors_total"] = sum(1 for o in done if o.status.startswith("error"))
    return result


async def _probe(http: aiohttp.ClientSession, url: str, *, reset: bool = False) -> dict[str, Any]:
    async with http.get(f"{url}?reset={int(reset)}") as response:
        body: dict[str, Any] = await response.json()
        return body


async def _waves(driver: Driver, spec: Mapping[str, Any], http: aiohttp.ClientSession) -> dict[str, Any]:
    size, waves, mid = int(spec["concurrency"]), int(spec.get("waves", 2)), float(spec.get("mid", 1.0))
    run = uuid.uuid4().hex[:6]
    pids = spec.get("pids", {})
    probe = str(spec["probe"])
    # Warm the service (first-use imports, caches, connections) so wave 1 measures conversations.
    warm = int(spec.get("warmup_questions", 10))
    await asyncio.gather(*[driver.ask(f"{run}-warm-{i}", 0, message_text(i)) for i in range(warm)])
    # The idle process's own CPU (the lag sampler, timers), subtracted from each wave's.
    idle_before = _reading(pids)
    await asyncio.sleep(1.0)
    idle = _delta(idle_before, _reading(pids))
    idle_rate = {name: cpu / idle["seconds"] for name, cpu in idle["cpu"].items()}
    rounds: list[dict[str, Any]] = []
    for wave in range(waves):
        await _probe(http, probe, reset=True)
        before = _reading(pids)
        tasks = [
            asyncio.create_task(driver.ask(f"{run}-{slot}", wave, message_text(slot + wave)))
            for slot in range(size)
        ]
        await asyncio.sleep(mid)  # a reading while every conversation is in flight
        during = _reading(pids)
        probed = await _probe(http, probe)
        outcomes = list(await asyncio.gather(*tasks))
        responded = time.monotonic()
        # Answers that missed the inline budget finish in the background: their CPU counts too.
        # Settled: half a second in which the server spent no more than when idle (+20 ms).
        settle_by = responded + float(spec.get("settle", 30.0))
        server = pids.get("server")
        while server is not None and time.monotonic() < settle_by:
            spent = proc_cpu_seconds(server)
            await asyncio.sleep(0.5)  # a reading, not a measurement
            if proc_cpu_seconds(server) - spent <= idle_rate.get("server", 0.0) * 0.5 + 0.02:
                break
        after = _reading(pids)
        lag = await _probe(http, probe)
        result = _outcomes(outcomes)
        usage = _delta(before, after)
        usage["net_cpu"] = {
            name: max(cpu - idle_rate[name] * usage["seconds"], 0.0) for name, cpu in usage["cpu"].items()
        }
        result.update(
            usage=usage,
            rss_during=during["rss"],
            tasks_during=probed.get("tasks"),
            lag=lag.get("lag"),
            wall=responded - before["at"],
            settled=after["at"] - before["at"],
        )
        rounds.append(result)
    return {"waves": rounds, "idle_cpu_per_s": idle_rate}


async def _deadline(
    spec: Mapping[str, Any], http: aiohttp.ClientSession, standins: StandIns, llm: StandInLLM
) -> dict[str, Any]:
    count, url = int(spec["count"]), str(spec["url"])
    points = []
    for number, point in enumerate(spec["points"]):
        timing = Timing(**point)
        llm.configure(timing)
        run = f"{uuid.uuid4().hex[:6]}-{number}"
        with_cb = Kakao(http, url, timeout=30.0, standins=standins, callback=True)
        without = Kakao(http, url, timeout=30.0, standins=standins, callback=False)
        asks = [with_cb.ask(f"{run}-cb-{i}", 0, message_text(i)) for i in range(count)]
        asks += [without.ask(f"{run}-no-{i}", 0, message_text(i)) for i in range(count)]
        started = time.monotonic()
        outcomes = await asyncio.gather(*asks)
        follow_up_at = started + timing.total + float(spec.get("follow_up_after", 1.0))
        pending = [i for i, o in enumerate(outcomes[count:]) if o.status == "fallback"]
        await asyncio.sleep(max(follow_up_at - time.monotonic(), 0))  # the user writes again later
        delivered = await asyncio.gather(*[_follow_up(http, url, f"{run}-no-{i}", standins) for i in pending])
        points.append(
            {
                "llm_seconds": timing.total,
                "callback": _deadline_stats(outcomes[:count], []),
                "no_callback": _deadline_stats(outcomes[count:], list(delivered)),
            }
        )
    return {"points": points}


async def _follow_up(http: aiohttp.ClientSession, url: str, conv: str, standins: StandIns) -> bool:
    """The user's next message: True when its reply carries the earlier answer."""
    driver = Kakao(http, url, timeout=30.0, standins=standins, callback=False)
    outcome = await driver.ask(conv, 1, "아까 물어본 거 답 나왔나요?")
    carried = any(MARKER in text for text in driver.last_texts[:-1])  # before its own reply
    return not outcome.status.startswith("error") and carried


def _deadline_stats(outcomes: list[Outcome], follow_ups: list[bool]) -> dict[str, Any]:
    def share(flags: list[bool]) -> float:
        return sum(flags) / len(flags) if flags else float("nan")

    answered = [o.status == "answer" for o in outcomes]
    return {
        "count": len(outcomes),
        "statuses": dict(Counter(o.status for o in outcomes)),
        "via": dict(Counter(o.via for o in outcomes if o.status == "answer")),
        "responded_within_5s": share(
            [o.responded is not None and o.responded - o.started <= 5.0 for o in outcomes]
        ),
        "answered_within_5s": share(
            [a and o.latency <= 5.0 for a, o in zip(answered, outcomes, strict=True)]
        ),
        "answered_within_60s": share(
            [a and o.latency <= 60.0 for a, o in zip(answered, outcomes, strict=True)]
        ),
        "fallbacks": sum(1 for o in outcomes if o.status == "fallback"),
        "answered_on_next_message": sum(follow_ups),
        "response_s": summarize([o.responded - o.started for o in outcomes if o.responded is not None]),
        "answer_s": summarize([o.latency for o in outcomes if o.status == "answer"]),
    }


async def _first_text(
    spec: Mapping[str, Any], http: aiohttp.ClientSession, standins: StandIns, llm: StandInLLM
) -> dict[str, Any]:
    count, url = int(spec["count"]), str(spec["url"])
    rows = []
    serial = 0
    for door in spec["doors"]:
        driver = make_driver(door, http, url, timeout=30.0, standins=standins)
        for point in spec["points"]:
            timing = Timing(**point)
            llm.configure(timing)
            run = uuid.uuid4().hex[:6]
            visible: list[float] = []
            complete: list[float] = []
            from_request: list[float] = []
            statuses: Counter[str] = Counter()
            for i in range(count):
                serial += 1
                tag = tag_for(serial)
                outcome = await driver.ask(f"{run}-{i}", 0, message_text(i, tag))
                statuses[outcome.status] += 1
                first, last = llm.first_chunk_at.get(tag), llm.last_chunk_at.get(tag)
                if outcome.status != "answer" or first is None or last is None or outcome.visible is None:
                    continue
                visible.append(outcome.visible - first)
                complete.append(outcome.finished - last)
                from_request.append(outcome.visible - outcome.started)
            rows.append(
                {
                    "door": door,
                    "llm": {
                        "first_token": timing.first_token,
                        "chunks": timing.chunks,
                        "chunk_delay": timing.chunk_delay,
                    },
                    "statuses": dict(statuses),
                    "visible_after_first_token": summarize(visible),
                    "complete_after_last_token": summarize(complete),
                    "visible_after_request": summarize(from_request),
                }
            )
    return {"rows": rows}


async def run(spec: Mapping[str, Any]) -> dict[str, Any]:
    standins = StandIns()
    if spec.get("standins_port") is not None:
        await standins.start(int(spec["standins_port"]))
    llm: StandInLLM | None = None
    if spec.get("llm_port") is not None:
        llm = StandInLLM(record=True)
        await llm.start(int(spec["llm_port"]))
    timeout = float(spec.get("timeout", 30.0))
    # No pool limit: every worker keeps its own keep-alive connection, as busy platforms do.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
    client_timeout = aiohttp.ClientTimeout(total=timeout + 5)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as http:
            driver = make_driver(
                str(spec.get("door", "kakao")),
                http,
                str(spec["url"]),
                timeout=timeout,
                standins=standins,
                callback=bool(spec.get("callback", False)),
            )
            mode = spec.get("mode", "closed")
            if mode == "wave":
                result = await _waves(driver, spec, http)
            elif mode in ("deadline", "first_text"):
                assert llm is not None, f"mode {mode} needs llm_port"
                runner = _deadline if mode == "deadline" else _first_text
                result = await runner(spec, http, standins, llm)
            else:
                result = await _closed(driver, spec)
    finally:
        await standins.close()
        if llm is not None:
            await llm.close()
    result["door"] = spec.get("door", "")
    result["platform_calls"] = {"slack": standins.slack_calls, "teams": standins.teams_calls}
    return result


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = asyncio.run(run(spec))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
