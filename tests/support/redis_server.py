"""A private redis-server that a test may kill and start again (outage tests).

The shared test Redis (``redis_url``) must never be stopped; this one lives on its own free port,
keeps nothing on disk (unless given a ``data_dir``: then an append-only file there, so that what
was written survives a restart, as a Redis in production), and is stopped when the test ends::

    async with RedisServer() as server:
        store = RedisStore.from_url(server.url)
        await server.stop()    # Redis is gone: connections are refused
        await server.start()   # back on the same port, empty
        server.pause()         # frozen: connections hang (resume() thaws it)
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
from pathlib import Path
from types import TracebackType
from typing import Self

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["RedisServer", "free_port"]

STARTUP_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server process on 127.0.0.1 with a free port, without persistence unless ``data_dir``.

    With ``data_dir`` the server keeps an append-only file there (``appendonly yes``): Redis writes
    each command to it before answering, so even a SIGKILL loses nothing that was acknowledged.
    """

    def __init__(self, *, data_dir: Path | None = None) -> None:
        self._data_dir = data_dir
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._binary = binary
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start the server (again) and return once it answers PING."""
        if self.running:
            return
        if self._data_dir is None:
            persistence = ["--appendonly", "no"]
        else:
            persistence = ["--dir", str(self._data_dir), "--appendonly", "yes", "--appendfsync", "everysec"]
        self._process = await asyncio.create_subprocess_exec(
            self._binary,
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
            "--protected-mode", "no", "--loglevel", "warning",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            async with asyncio.timeout(STARTUP_SECONDS):
                while True:
                    if self._process.returncode is not None:
                        raise RuntimeError(f"redis-server exited with {self._process.returncode}")
                    try:
                        await client.ping()
                        return
                    except RedisError:
                        await asyncio.sleep(0.02)  # polling a condition: is the port open yet
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """Kill the server (SIGKILL, which also ends a paused one) and wait until it is gone."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGKILL)
        await process.wait()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers, like a host
        that vanished from the network."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
