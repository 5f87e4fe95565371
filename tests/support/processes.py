"""`dari serve` as real processes for end-to-end tests: start, watch their logs, kill, stop.

Every line a process writes to stderr is kept (JSON log lines parsed), and tests wait on
conditions over them (``wait_log``), never on sleeps.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["DariProcess", "clean_env", "free_port", "poll"]

ROOT = Path(__file__).resolve().parents[2]
_OURS = ("OPENAI", "AZURE", "SLACK", "Microsoft", "MICROSOFT", "REDIS", "DARI", "KAKAO")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**values: str) -> dict[str, str]:
    """This machine's environment without any dari setting, plus ``values``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OURS)}
    env.update(values)
    return env


async def poll(condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 20.0) -> None:
    """Wait until ``condition()`` holds, checking every 20 ms (for state another process changes)."""
    for _ in range(round(timeout / 0.02)):
        result = condition()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(0.02)  # polling a condition that another process changes
    raise TimeoutError(f"not true within {timeout} s")


class DariProcess:
    """One ``python -m adapters.cli serve`` on 127.0.0.1.

    Attributes:
        lines: every stderr line so far; ``logs`` the JSON ones, parsed.
    """

    def __init__(self, env: Mapping[str, str], *, cwd: Path, extra: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = dict(env)
        self._cwd = cwd
        self._extra = list(extra)
        self.lines: list[str] = []
        self.logs: list[dict[str, Any]] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    @property
    def process(self) -> asyncio.subprocess.Process:
        assert self._process is not None, "not started"
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    async def start(self) -> DariProcess:
        command = [
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._process = await asyncio.create_subprocess_exec(
            *command,
            *self._extra,
            cwd=self._cwd,
            env={**self._env, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        async for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            async with self._changed:
                self.lines.append(line)
                if line.startswith("{"):
                    self.logs.append(json.loads(line))
                self._changed.notify_all()

    async def wait_log(
        self, match: Callable[[dict[str, Any]], bool], *, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The first JSON log line that ``match``es, waiting for it to be written."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: any(match(entry) for entry in self.logs))
        return next(entry for entry in self.logs if match(entry))

    def logged(self, text: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs if text in str(entry.get("msg", ""))]

    async def wait_until_up(self, http: aiohttp.ClientSession, *, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while self.process.returncode is None:
                try:
                    async with http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)  # polling a condition: is the port open yet
        raise AssertionError("dari serve exited early:\n" + "\n".join(self.lines[-20:]))

    def kill(self) -> None:
        """SIGKILL: the process dies on the spot, mid-answer if it was answering."""
        self.process.send_signal(signal.SIGKILL)

    async def stop(self, *, timeout: float = 40.0) -> int:
        """SIGTERM, then wait for the exit; the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait(timeout=timeout)

    async def wait(self, *, timeout: float = 40.0) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout=timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout=timeout)
        return code

    async def close(self) -> None:
        """Make sure the process is gone (after a failed test too)."""
        if self._process is not None and self._process.returncode is None:
            self.kill()
            await self.wait()
