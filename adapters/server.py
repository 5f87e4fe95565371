"""The composition root: builds the aiohttp application with every door and resource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from adapters import kakao, slack, teams
from adapters import web as console
from adapters.health import READINESS, Readiness
from adapters.health import routes as health_routes
from adapters.logs import AccessLogger
from adapters.metrics import METRICS, Metrics, metrics_handler
from adapters.middleware import errors_as_json, request_id
from adapters.runtime import ENGINE, HTTP, SETTINGS, STORE, TASKS, TaskSet
from adapters.settings import Settings
from core.engine import Engine
from core.llm.base import LLM
from core.llm.openai import OpenAIChat
from core.memory import EmbeddedStore, RedisStore
from core.memory.base import Store
from core.persona import load_personas
from core.tokens import count_tokens

__all__ = ["DOORS", "RUNNER_OPTIONS", "create_app"]

log = logging.getLogger(__name__)

# How the app must be run (web.run_app / web.AppRunner keyword arguments): our access logger
# never prints query strings, which may carry the Kakao skill secret.
RUNNER_OPTIONS = {"access_log_class": AccessLogger}

SHUTDOWN_GRACE = 25.0  # seconds to finish answers in flight on SIGTERM

# name -> setup(app, settings) -> a line for the start-up log
DOORS: dict[str, Callable[[web.Application, Settings], str]] = {
    "kakao": kakao.setup,
    "slack": slack.setup,
    "teams": teams.setup,
    "web": console.setup,
}


def build_llm(settings: Settings) -> LLM | None:
    """The configured LLM client, or None when no endpoint is set."""
    if not settings.llm_configured:
        return None
    if settings.azure_openai_endpoint:
        key = settings.azure_openai_api_key
        return OpenAIChat(
            api_key=key.get_secret_value() if key else None,
            base_url=None,
            azure_endpoint=settings.azure_openai_endpoint,
            api_version=settings.openai_api_version,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )
    key = settings.openai_api_key
    return OpenAIChat(
        api_key=key.get_secret_value() if key else None,
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )


async def open_store(settings: Settings) -> tuple[Store, str]:
    """The Redis store when REDIS_URL is set, else the embedded SQLite file."""
    if settings.redis_url:
        return RedisStore.from_url(settings.redis_url, prefix=settings.redis_prefix), "redis"
    path = settings.data_dir / "dari.sqlite3"
    return await EmbeddedStore.open(path=path), f"embedded sqlite ({path})"


def create_app(settings: Settings) -> web.Application:
    """Build the service. Bot files are validated here, so a broken one stops start-up."""
    personas = load_personas(settings.bots_dir)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[request_id, errors_as_json])
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TASKS] = TaskSet()
    app[METRICS].track_queue(lambda: len(app[TASKS]))

    async def resources(app: web.Application) -> AsyncIterator[None]:
        # The tokenizer loads its vocabulary on first use (~0.4 s): do it now, not on a user's turn.
        await asyncio.to_thread(count_tokens, "다리")
        store, kind = await open_store(settings)
        llm = build_llm(settings)
        if llm is None:
            log.warning("no LLM configured: users will be told the assistant is not set up yet")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            app[HTTP] = http
            app[STORE] = store
            app[ENGINE] = Engine(
                store=store, llm=llm, personas=personas, default_model=settings.model, observer=app[METRICS]
            )
            app[READINESS] = Readiness(store=store, store_kind=kind, llm=llm)
            try:
                yield
            finally:
                await app[ENGINE].close(timeout=SHUTDOWN_GRACE)
                if llm is not None:
                    await llm.close()
                await store.close()

    async def drain(app: web.Application) -> None:
        # on_shutdown runs before any cleanup context exits, so answers in flight still
        # have the store, the LLM and every door's client.
        await app[TASKS].drain(SHUTDOWN_GRACE)

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(drain)
    app.router.add_routes(health_routes)
    app.router.add_get("/metrics", metrics_handler)
    for name, setup in DOORS.items():
        log.info("door %s: %s", name, setup(app, settings))
    return app
