"""The composition root: builds the aiohttp application with every door and resource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from adapters import kakao, slack, teams
from adapters import web as console
from adapters.draining import DRAINING, Draining, refuse_while_draining
from adapters.health import READINESS, Readiness
from adapters.health import routes as health_routes
from adapters.logs import AccessLogger
from adapters.metrics import METRICS, Metrics, metrics_handler
from adapters.middleware import errors_as_json, request_id
from adapters.protection import BUSY_POOL_WAIT, guard_llm, open_limiter, redis_client, shield_store, watch
from adapters.runtime import ENGINE, HTTP, SETTINGS, STORE, TASKS, TaskSet
from adapters.settings import Settings
from adapters.worker import WORKER, Worker, claims_in, open_queue, order_wait, process_name
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
        # A conversation's lock outlives a killed holder by at most a job lease (at most 15 s).
        lock = min(settings.job_lease, 15.0)
        store = RedisStore(
            client=redis_client(settings.redis_url, pool=settings.redis_pool, wait=BUSY_POOL_WAIT),
            prefix=settings.redis_prefix,
            lock_timeout=lock,
        )
        return store, "redis"
    path = settings.data_dir / "dari.sqlite3"
    return await EmbeddedStore.open(path=path), f"embedded sqlite ({path})"


def create_app(settings: Settings) -> web.Application:
    """Build the service. Bot files are validated here, so a broken one stops start-up."""
    personas = load_personas(settings.bots_dir)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_id, refuse_while_draining, errors_as_json],
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TASKS] = TaskSet()
    app[DRAINING] = Draining()
    app[WORKER] = Worker(
        tasks=app[TASKS],
        name=process_name(),
        lease=settings.job_lease,
        order_wait=order_wait(
            lease=settings.job_lease,
            llm_timeout=settings.llm_timeout,
            llm_attempts=settings.llm_max_retries + 1,
        ),
        events=app[METRICS].job,
    )
    app[METRICS].track_queue(lambda: len(app[TASKS]))
    app[METRICS].track_jobs(lambda: app[WORKER].running)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        # The tokenizer loads its vocabulary on first use (~0.4 s): do it now, not on a user's turn.
        await asyncio.to_thread(count_tokens, "다리")
        store, kind = await open_store(settings)
        store, limiter = shield_store(store, kind), open_limiter(settings)
        llm = guard_llm(build_llm(settings), settings)
        watch(app[METRICS], store=store, llm=llm)
        if llm is None:
            log.warning("no LLM configured: users will be told the assistant is not set up yet")
        queue = open_queue(
            redis_url=settings.redis_url,
            pool=settings.redis_pool,
            prefix=settings.redis_prefix,
            name=app[WORKER].name,
            lease=settings.job_lease,
            claim=claims_in(store),
        )
        app[WORKER].attach(queue, claim=claims_in(store))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            app[HTTP] = http
            app[STORE] = store
            app[ENGINE] = Engine(
                store=store,
                llm=llm,
                personas=personas,
                default_model=settings.model,
                observer=app[METRICS],
                limiter=limiter,
            )
            breaker = None if llm is None else llm.breaker
            app[READINESS] = Readiness(store=store, store_kind=kind, llm=llm, breaker=breaker)
            try:
                yield
            finally:
                await app[ENGINE].close(timeout=SHUTDOWN_GRACE)
                if llm is not None:
                    await llm.close()
                await limiter.close()
                await store.close()
                await queue.close()

    async def start_jobs(app: web.Application) -> None:
        # on_startup runs after every cleanup context: each door has added its deliverer.
        app[WORKER].start()

    async def drain(app: web.Application) -> None:
        # on_shutdown runs before any cleanup context exits, so answers in flight still
        # have the store, the LLM and every door's client. Unfinished jobs are handed over.
        app[DRAINING].on = True
        await app[WORKER].stop(settings.shutdown_grace)
        await app[TASKS].drain(settings.shutdown_grace)

    app.cleanup_ctx.append(resources)
    app.on_startup.append(start_jobs)
    app.on_shutdown.append(drain)
    app.router.add_routes(health_routes)
    app.router.add_get("/metrics", metrics_handler)
    for name, setup in DOORS.items():
        log.info("door %s: %s", name, setup(app, settings))
    return app
