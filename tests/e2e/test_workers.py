"""`dari serve --workers 2`: two workers answer on one port; a killed worker is started again."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.openai_server import FakeOpenAI
from tests.support.processes import DariProcess, clean_env, poll
from tests.support.service import redis_prefix

BODY = {"userRequest": {"utterance": "안녕하세요", "user": {"id": "u1"}}, "bot": {"id": "b1"}}


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    async with redis_prefix(redis_url) as name:
        yield name


def started(entry: dict[str, Any]) -> bool:
    return str(entry.get("msg", "")).startswith("worker ") and "started" in str(entry["msg"])


async def test_two_workers_share_the_port_and_a_dead_one_is_replaced(
    fake_openai: FakeOpenAI, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    env = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        REDIS_URL=redis_url,
        DARI_REDIS_PREFIX=prefix,
        DARI_DATA_DIR=str(tmp_path),
    )
    supervisor = await DariProcess(env, cwd=tmp_path, extra=["--workers", "2"]).start()
    try:
        # A fresh connection per request: the kernel spreads connections over the workers.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await supervisor.wait_until_up(http)
            await supervisor.wait_log(lambda e: started(e) and e["worker"] == 1)
            workers = {entry["worker_pid"] for entry in supervisor.logs if started(entry)}
            assert len(workers) == 2 and supervisor.pid not in workers
            answering: set[int] = set()
            for _ in range(20):  # the kernel's spread is random: ask until both answered, boundedly
                for _ in range(20):
                    async with http.post(supervisor.url + "/kakao/skill", json=BODY) as response:
                        assert response.status == 200
                await supervisor.wait_log(
                    lambda e: str(e["msg"]).startswith("POST /kakao/skill 200") and e["pid"] in workers
                )
                answering = {
                    e["pid"] for e in supervisor.logs if str(e["msg"]).startswith("POST /kakao/skill 200")
                }
                if answering == workers:
                    break
            assert answering == workers  # both workers answered on the one port

            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            replaced = await supervisor.wait_log(lambda e: started(e) and e["worker_pid"] not in workers)
            assert supervisor.logged("exited (code -9); restarting")
            for _ in range(10):  # meanwhile and afterwards the port keeps answering
                async with http.get(supervisor.url + "/healthz") as response:
                    assert response.status == 200
            await supervisor.wait_log(
                lambda e: e.get("pid") == replaced["worker_pid"] and "door kakao" in e["msg"]
            )
        assert await supervisor.stop() == 0
    finally:
        await supervisor.close()
    stopped = {e["pid"] for e in supervisor.logs if "stopping" in str(e["msg"]) or "drain" in str(e["msg"])}
    assert supervisor.pid in stopped
    for pid in (workers - {victim}) | {replaced["worker_pid"]}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every worker is gone with the supervisor


async def test_more_than_one_worker_needs_redis(tmp_path: Path) -> None:
    process = await DariProcess(
        clean_env(DARI_DATA_DIR=str(tmp_path)), cwd=tmp_path, extra=["--workers", "2"]
    ).start()
    try:
        assert await process.wait(timeout=30) == 2
    finally:
        await process.close()
    assert any("needs REDIS_URL" in line for line in process.lines)


async def test_workers_do_not_outlive_a_killed_supervisor(
    fake_openai: FakeOpenAI, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    env = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        REDIS_URL=redis_url,
        DARI_REDIS_PREFIX=prefix,
        DARI_DATA_DIR=str(tmp_path),
    )
    supervisor = await DariProcess(env, cwd=tmp_path, extra=["--workers", "2"]).start()
    try:
        async with aiohttp.ClientSession() as http:
            await supervisor.wait_until_up(http)
        await supervisor.wait_log(lambda e: started(e) and e["worker"] == 1)
        workers = {entry["worker_pid"] for entry in supervisor.logs if started(entry)}
        supervisor.kill()
        await supervisor.wait()  # returns once every worker closed its end of the log pipe
        # A process closes its files a moment before the kernel marks it exited: on a busy machine
        # the pipe's end can be seen before that (seen once in CI with a soak running beside it).
        with contextlib.suppress(TimeoutError):
            await poll(lambda: not any(running(pid) for pid in workers), timeout=10)
    finally:
        await supervisor.close()
    assert not any(running(pid) for pid in workers)


def running(pid: int) -> bool:
    """True while ``pid`` runs (an exited process that no one has reaped yet does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
