"""``dari serve --workers N``: a supervisor keeps N worker processes serving one port.

Each worker is a whole ``dari serve`` (its own event loop, engine and consumer in the job
queue) listening on the same address with SO_REUSEPORT, so the kernel spreads connections over
them. The supervisor restarts a worker that dies, waiting longer after each quick death (no
crash loop), gives up when a worker cannot even start (a configuration error), and on SIGTERM
or SIGINT passes SIGTERM on and waits for every worker to drain and exit.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import signal
import sys
from collections.abc import Sequence

__all__ = ["Supervisor", "worker_command"]

log = logging.getLogger("dari.supervisor")

STEADY = 30.0  # a worker up this long counts as healthy: its next death restarts it at once
START_FAILED = 2  # the exit code of `dari serve` when its settings or bot files are wrong
_BACKOFF = (0.5, 30.0)


_PR_SET_PDEATHSIG = 1


def _die_with_the_supervisor(parent: int) -> None:
    """In the worker, before exec: get SIGTERM (and drain) if the supervisor dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


def worker_command(*, host: str, port: int) -> list[str]:
    """The command line of one worker."""
    return [sys.executable, "-m", "adapters.cli", "serve", "--host", host, "--port", str(port), "--worker"]


class Supervisor:
    """Starts ``count`` workers, keeps them running, stops them on a signal.

    Args:
        count: how many workers.
        command: a worker's command line.
        grace: how long a stopping worker may take before it is killed (its drain time and a margin).
    """

    def __init__(self, *, count: int, command: Sequence[str], grace: float) -> None:
        self._count = count
        self._command = list(command)
        self._grace = grace
        self._workers: dict[int, asyncio.subprocess.Process] = {}
        self._stop = asyncio.Event()
        self._failed = False

    async def run(self) -> int:
        """Supervise until a signal (0) or a worker that cannot start (2)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        keepers = [
            asyncio.create_task(self._keep(index), name=f"worker-{index}") for index in range(self._count)
        ]
        await self._stop.wait()
        log.info("stopping %d workers", len(self._workers))
        for process in self._workers.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        await asyncio.gather(*keepers, return_exceptions=True)
        return START_FAILED if self._failed else 0

    async def _keep(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        quick_deaths = 0
        while not self._stop.is_set():
            started = loop.time()
            process = await asyncio.create_subprocess_exec(
                *self._command, preexec_fn=functools.partial(_die_with_the_supervisor, os.getpid())
            )
            self._workers[index] = process
            log.info("worker %d started", index, extra={"worker": index, "worker_pid": process.pid})
            code = await self._wait(process)
            if self._stop.is_set():
                return
            up = loop.time() - started
            if code == START_FAILED and up < STEADY:
                log.error("worker %d cannot start (exit %d): stopping", index, code, extra={"worker": index})
                self._failed = True
                self._stop.set()
                return
            quick_deaths = 0 if up >= STEADY else quick_deaths + 1
            delay = 0.0 if not quick_deaths else min(_BACKOFF[0] * 2 ** (quick_deaths - 1), _BACKOFF[1])
            log.warning(
                "worker %d exited (code %s); restarting in %.1f s",
                index,
                code,
                delay,
                extra={"worker": index, "worker_pid": process.pid},
            )
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            except TimeoutError:
                continue

    async def _wait(self, process: asyncio.subprocess.Process) -> int:
        """The worker's exit code; once stopping, it gets ``grace`` seconds before SIGKILL."""
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self._stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not exited.done():
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout=self._grace)
            except TimeoutError:
                log.error("worker %d did not stop in time: killed", process.pid)
                process.kill()
        return await exited
