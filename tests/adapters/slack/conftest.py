"""A running Slack door on loopback (its own small aiohttp app) and the Web API stand-in."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from adapters import slack
from adapters.middleware import errors_as_json
from adapters.runtime import ENGINE, SETTINGS, TASKS, TaskSet
from adapters.settings import Settings
from adapters.slack import DoorOptions
from adapters.worker import WORKER, Worker, claims_in
from core.engine import Engine
from core.jobs_local import LocalQueue
from core.llm.base import LLM
from core.persona import Persona
from tests.support.fakes import InMemoryStore, ScriptedLLM
from tests.support.slack_api import SlackAPI, slack_api

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "test-signing-secret"

PERSONA = Persona(
    id="default",
    name="다리",
    speech_level="haeyo",
    language="ko",
    greeting="안녕하세요, 사내 업무 도우미 다리예요. 무엇을 도와드릴까요?",
    quick_replies=("메일 초안 써 주세요", "회의록 요약해 주세요", "영어로 번역해 주세요", "도움말", "다섯째"),
    instructions="당신은 다리예요.",
    model="",
    temperature=0.3,
    max_answer_tokens=512,
    history_tokens=2000,
    history_turns=20,
    retention_days=30,
)


def payload(name: str, **event: Any) -> dict[str, Any]:
    """A recorded payload, with a fresh event id and any event fields replaced."""
    body: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    body = copy.deepcopy(body)
    body["event_id"] = f"Ev{time.monotonic_ns()}"
    body.setdefault("event", {}).update(event)
    return body


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature: HMAC-SHA256 over "v0:<timestamp>:<body>"."""
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + digest.hexdigest()


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass(slots=True)
class Door:
    """The door under test: its URL, the stand-in behind it, and the fakes behind the engine.

    ``llm`` is the scripted LLM the engine uses (an unused one when a real client was given).
    """

    url: str
    api: SlackAPI
    llm: ScriptedLLM
    store: InMemoryStore
    tasks: TaskSet
    http: aiohttp.ClientSession
    status: str

    async def post(
        self,
        body: dict[str, Any] | str | bytes,
        *,
        content_type: str = "application/json",
        timestamp: str | None = None,
        secret: str = SECRET,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send a body to /slack/events, signed as Slack signs it."""
        if isinstance(body, dict):
            raw = json.dumps(body, ensure_ascii=False).encode()
        else:
            raw = body.encode() if isinstance(body, str) else body
        ts = timestamp if timestamp is not None else str(int(time.time()))
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(secret, ts, raw),
            **(headers or {}),
        }
        async with self.http.post(self.url, data=raw, headers=sent) as response:
            return Reply(response.status, dict(response.headers), await response.text())

    async def settle(self) -> None:
        """Wait for every answer in flight to finish (the task set's own wait, not a sleep)."""
        await self.tasks.drain(timeout=15)


@asynccontextmanager
async def running_door(
    *,
    options: DoorOptions | None = None,
    llm: LLM | None = None,
    app_token: str | None = None,
    **api_options: Any,
) -> AsyncIterator[Door]:
    async with slack_api(**api_options) as api, aiohttp.ClientSession() as http:
        settings = Settings(
            slack_bot_token=SecretStr("xoxb-test"),
            slack_signing_secret=SecretStr(SECRET),
            slack_app_token=SecretStr(app_token) if app_token else None,
            slack_api_url=api.url,
            _env_file=None,  # type: ignore[call-arg]
        )
        store, scripted = InMemoryStore(), ScriptedLLM("네, **확인**했어요.")
        app = web.Application(middlewares=[errors_as_json], client_max_size=64 * 1024)
        app[SETTINGS] = settings
        app[TASKS] = TaskSet()
        app[WORKER] = Worker(tasks=app[TASKS], name="test", lease=60.0, order_wait=30.0)
        app[WORKER].attach(LocalQueue(claim=claims_in(store)), claim=claims_in(store))
        engine = Engine(store=store, llm=llm or scripted, personas={"default": PERSONA}, default_model="m")
        app[ENGINE] = engine

        async def drain(app: web.Application) -> None:
            await app[TASKS].drain(15)

        app.on_shutdown.append(drain)
        status = slack.setup(app, settings, options or DoorOptions(write_interval=0.01))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            url = f"http://127.0.0.1:{port}/slack/events"
            yield Door(
                url, api, llm if isinstance(llm, ScriptedLLM) else scripted, store, app[TASKS], http, status
            )
        finally:
            await runner.cleanup()


@pytest.fixture
async def door() -> AsyncIterator[Door]:
    async with running_door() as running:
        yield running
