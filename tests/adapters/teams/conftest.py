"""The Teams door on a loopback port, with the Bot Connector stand-in and a scripted LLM."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from adapters.metrics import METRICS, Metrics
from adapters.middleware import errors_as_json, request_id
from adapters.runtime import ENGINE, HTTP, SETTINGS, STORE, TASKS, TaskSet
from adapters.settings import DEFAULT_BOTS_DIR
from adapters.teams import ROUTE, TeamsOptions, mount
from adapters.teams.auth import BotFrameworkCloud
from adapters.teams.stream import Pacing
from adapters.worker import WORKER, Worker, claims_in
from core.engine import Engine
from core.jobs_local import LocalQueue
from core.persona import load_personas
from tests.support.botframework import BotConnector, StandInCredentialsFactory, TokenIssuer
from tests.support.fakes import InMemoryStore, ScriptedLLM
from tests.support.service import IsolatedSettings

PAYLOADS = Path(__file__).parent / "payloads"
PASSWORD = "stand-in-password"


def payload(file: str, connector: BotConnector, /, **fields: Any) -> dict[str, Any]:
    """A real activity from payloads/, sent to the stand-in connector, with ``fields`` replaced."""
    activity: dict[str, Any] = json.loads((PAYLOADS / f"{file}.json").read_text(encoding="utf-8"))
    activity["serviceUrl"] = connector.service_url
    activity.update(copy.deepcopy(fields))
    return activity


def bot_app_id(activity: dict[str, Any]) -> str:
    """The app id a payload was addressed to ("28:<app id>")."""
    return str(activity["recipient"]["id"]).removeprefix("28:")


@dataclass
class Door:
    """A running door: where to post, and what it talks to."""

    url: str
    app: web.Application
    http: aiohttp.ClientSession
    connector: BotConnector
    llm: ScriptedLLM
    store: InMemoryStore

    async def post(self, activity: object, *, token: str | None = None) -> tuple[int, Any]:
        """POST an activity; returns the status and the decoded JSON body (None when empty)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.post(self.url, json=activity, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def settle(self) -> None:
        """Wait until every background reply has finished."""
        await self.app[TASKS].join()


@asynccontextmanager
async def run_door(
    connector: BotConnector,
    llm: ScriptedLLM,
    *,
    app_id: str = "",
    issuer: TokenIssuer | None = None,
    deadline: float = 12.0,
    pacing: Pacing | None = None,
    key_timeout: float = 5.0,
) -> AsyncIterator[Door]:
    """Start an app with only the Teams door on 127.0.0.1 (local mode unless ``app_id``)."""
    settings = IsolatedSettings(
        microsoft_app_id=app_id,
        microsoft_app_password=SecretStr(PASSWORD) if app_id else None,
        teams_reply_deadline=deadline,
    )
    store = InMemoryStore()
    app = web.Application(middlewares=[request_id, errors_as_json])
    app[SETTINGS] = settings
    app[TASKS] = TaskSet()
    app[WORKER] = Worker(tasks=app[TASKS], name="test", lease=60.0, order_wait=30.0)
    app[WORKER].attach(LocalQueue(claim=claims_in(store)), claim=claims_in(store))
    app[METRICS] = Metrics()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http:
            app[HTTP] = http
            app[STORE] = store
            app[ENGINE] = Engine(
                store=store, llm=llm, personas=load_personas(DEFAULT_BOTS_DIR), default_model="m"
            )
            yield
            await app[TASKS].drain(5.0)

    app.cleanup_ctx.append(resources)
    cloud = BotFrameworkCloud(
        openid_metadata_url=issuer.metadata_url if issuer else "http://127.0.0.1:9/unused",
        emulator_metadata_url=issuer.metadata_url if issuer else "http://127.0.0.1:9/unused",
        login_url=connector.base,
    )
    factory = StandInCredentialsFactory(app_id=app_id, password=PASSWORD, token_url=connector.token_url)
    options = TeamsOptions(
        cloud=cloud,
        credentials_factory=factory,
        pacing=pacing or Pacing(stream_interval=0.0),
        backoff=0.01,
        key_timeout=key_timeout,
    )
    mount(app, settings, options=options)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{ROUTE}"
    try:
        async with aiohttp.ClientSession() as http:
            yield Door(url=url, app=app, http=http, connector=connector, llm=llm, store=store)
    finally:
        await runner.cleanup()


@pytest.fixture
async def connector() -> AsyncIterator[BotConnector]:
    async with BotConnector() as stand_in:
        yield stand_in


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM("네, 확인했어요. **회의록 요약**은 아래와 같아요.", chunk=6)


@pytest.fixture
async def door(connector: BotConnector, llm: ScriptedLLM) -> AsyncIterator[Door]:
    async with run_door(connector, llm) as running:
        yield running
