"""Run the whole service (adapters.server.create_app) on a loopback port for end-to-end tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

from aiohttp import web
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from redis.asyncio import Redis

from adapters.logs import AccessLogger
from adapters.server import create_app
from adapters.settings import Settings

__all__ = ["CallbackReceiver", "IsolatedSettings", "Service", "redis_prefix", "run_service"]


class IsolatedSettings(Settings):
    """Settings from constructor arguments only: the machine's environment and .env stay out."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@asynccontextmanager
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A fresh key prefix for one test's service; every key under it is deleted afterwards."""
    prefix = f"dari-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        client = Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


class Service:
    """A started service: its base URL and its application (for app keys in assertions)."""

    def __init__(self, *, url: str, app: web.Application) -> None:
        self.url = url
        self.app = app


@asynccontextmanager
async def run_service(settings: Settings) -> AsyncIterator[Service]:
    """Start create_app(settings) on 127.0.0.1 with a free port; stop it cleanly afterwards."""
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=5.0, access_log_class=AccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Service(url=f"http://127.0.0.1:{port}", app=app)
    finally:
        await runner.cleanup()


class CallbackReceiver:
    """Stands in for Kakao's callback endpoint: records every POST, can fail the first ones."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_next: list[int] = []
        self.refuse_next: list[str] = []  # Kakao's FAIL messages for the next POSTs
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail_next:
            return web.json_response({"status": "ERROR"}, status=self.fail_next.pop(0))
        if self.refuse_next:
            return web.json_response({"status": "FAIL", "message": self.refuse_next.pop(0)})
        async with self._arrived:
            self.bodies.append(body)
            self._arrived.notify_all()
        return web.json_response(
            {
                "taskId": "00000000-0000-0000-0000-000000000000",
                "status": "SUCCESS",
                "message": "",
                "timestamp": 0,
            }
        )

    async def wait_for(self, count: int, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` callbacks arrived (fails the test on timeout)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.bodies) >= count)
        return self.bodies

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/callback/{token}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/callback"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
