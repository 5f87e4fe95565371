"""What every door shares at run time: typed app keys and the background task set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from contextvars import Context
from typing import Any

import aiohttp
from aiohttp import web

from adapters.settings import Settings
from core.engine import Engine
from core.memory.base import Store

__all__ = ["ENGINE", "HTTP", "SETTINGS", "STORE", "TASKS", "TaskSet"]

log = logging.getLogger(__name__)


class TaskSet:
    """Background tasks with strong references, drained on shutdown.

    A reply produced after the platform was acknowledged runs here, so that it is neither
    garbage-collected mid-flight nor cut off when the service stops.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str = "", context: Context | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` here, in ``context`` (default: a copy of the current one: its request's)."""
        task = asyncio.create_task(coro, name=name or None, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s failed: %s", task.get_name(), type(exc).__name__, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def join(self) -> None:
        """Wait until every task, including ones started meanwhile, has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout: float) -> None:
        """Wait for running tasks up to ``timeout`` seconds, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
STORE = web.AppKey("store", Store)
TASKS = web.AppKey("tasks", TaskSet)
HTTP = web.AppKey("http", aiohttp.ClientSession)
