"""The whole service with every door open on loopback, and what a well-behaved answer looks like.

One ``Stack`` per fuzz module: ``create_app`` with the Kakao, Slack (signed requests, Slack Web
API stand-in), Teams (local mode, Bot Connector stand-in) and console doors, the real openai
client against ``FakeOpenAI``, and the embedded store; only write pacing and rate limits are off
(the fuzz sends hundreds of messages a second). Every ERROR log record with a trace that
the service writes while a stack runs is kept in ``Stack.crashes``: a background answer that
dies is a bug even when the HTTP status was fine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from adapters import server, slack, teams
from adapters.runtime import TASKS
from adapters.teams.stream import Pacing
from tests.support.botframework import BotConnector
from tests.support.openai_server import FakeOpenAI
from tests.support.service import IsolatedSettings, Service, run_service
from tests.support.slack_api import SlackAPI, slack_api

__all__ = [
    "ANSWER",
    "FUZZ",
    "SIGNING_SECRET",
    "Reply",
    "Stack",
    "assert_refused",
    "assert_well_behaved",
    "running_stack",
    "slack_headers",
]

SIGNING_SECRET = "fuzz-signing-secret-5d1f0c9a8b7e6d5c"
ANSWER = "네, 확인했어요."
TRACE_MARKERS = (b"Traceback", b'File "')

# Shared by every fuzz test: reproducible runs, nothing written to .hypothesis/, no per-example
# deadline (a whole HTTP round trip with an LLM call behind it has no meaningful one).
FUZZ: dict[str, Any] = {"derandomize": True, "database": None, "deadline": None}


# Not crashes of ours: aiohttp's own log of a request it refused at the HTTP level (the
# stand-ins share this process and its loggers), and a reply the platform stand-in refused.
_NOT_OURS = {("aiohttp.server", "*"), ("*", "ConnectorError")}


class _Crashes(logging.Handler):
    """Keeps ERROR records that carry an exception: a bug of ours, wherever it surfaced."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.exc_info or record.exc_info[0] is None:
            return
        kind = record.exc_info[0].__name__
        if {(record.name, "*"), ("*", kind)} & _NOT_OURS:
            return
        self.records.append(record)


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer as the fuzz checks it."""

    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Stack:
    """A running service and everything it talks to.

    Not a dataclass: hypothesis prints a failing example's arguments, and a dataclass would be
    printed field by field, every recorded request included.
    """

    def __init__(
        self,
        *,
        service: Service,
        http: aiohttp.ClientSession,
        openai: FakeOpenAI,
        slack: SlackAPI,
        connector: BotConnector,
        crashes: _Crashes,
    ) -> None:
        self.service = service
        self.http = http
        self.openai = openai
        self.slack = slack
        self.connector = connector
        self._crashes = crashes

    def __repr__(self) -> str:
        return f"Stack({self.service.url})"

    @property
    def crashes(self) -> list[str]:
        """Messages and exception types of the ERROR-with-trace records logged so far."""
        return [
            f"{r.name}: {r.getMessage()} ({r.exc_info[0].__name__})"
            for r in self._crashes.records
            if r.exc_info and r.exc_info[0] is not None
        ]

    async def send(
        self,
        path: str,
        body: bytes | None,
        *,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        chunked: bool = False,
    ) -> Reply:
        """One raw request; ``chunked`` sends the body with Transfer-Encoding: chunked."""
        data: Any = body
        if chunked and body is not None:
            data = _chunks(body)
        async with self.http.request(
            method, self.service.url + path, data=data, headers=dict(headers or {})
        ) as response:
            return Reply(response.status, response.content_type, await response.read())

    async def settle(self) -> None:
        """Wait until every background answer started so far has finished."""
        await self.service.app[TASKS].join()

    async def check(self, path: str, body: bytes, *, headers: Mapping[str, str]) -> Reply:
        """Send ``body``; the answer is well behaved and nothing it started crashed."""
        before = len(self.crashes)
        reply = await self.send(path, body, headers=headers)
        assert_well_behaved(reply)
        await self.settle()
        assert self.crashes[before:] == []
        return reply

    async def healthy(self) -> bool:
        async with self.http.get(self.service.url + "/healthz") as response:
            return response.status == 200 and (await response.json()) == {"status": "ok"}


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    size = max(1, len(body) // 3)
    for start in range(0, len(body), size):
        yield body[start : start + size]


def slack_headers(body: bytes, *, secret: str = SIGNING_SECRET, age: int = 0) -> dict[str, str]:
    """Slack's v0 signature headers for ``body`` (the signature covers the raw bytes)."""
    ts = str(int(time.time()) - age)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest}


def assert_well_behaved(reply: Reply, *, ok: tuple[int, ...] = (200,)) -> None:
    """The contract for any input: no 5xx, no trace in the body, errors as ``{"error": {...}}``.

    Args:
        reply: the answer to check.
        ok: the 2xx statuses this door documents for what it accepts or ignores.
    """
    assert reply.status < 500, f"{reply.status}: {reply.body[:300]!r}"
    for marker in TRACE_MARKERS:
        assert marker not in reply.body, f"a stack trace in the body: {reply.body[:300]!r}"
    if reply.status < 400:
        assert reply.status in ok, f"unexpected {reply.status}: {reply.body[:300]!r}"
        return
    assert reply.content_type == "application/json", f"{reply.status} as {reply.content_type}"
    error = reply.json()
    assert isinstance(error, dict) and set(error) == {"error"}, error
    assert isinstance(error["error"], dict), error
    assert isinstance(error["error"].get("code"), str) and error["error"]["code"], error
    assert isinstance(error["error"].get("message"), str), error


def assert_refused(reply: Reply, name: str, *, may_acknowledge: Collection[str] = ()) -> None:
    """The answer to the bad body ``name`` of ``corpus.bodies``: a 4xx, 413 when it is too big
    (``may_acknowledge``: bodies the door may take as a notice it does not read)."""
    assert 400 <= reply.status < 500 or name in may_acknowledge, reply.status
    if name == "over the limit":
        assert reply.status == 413


@asynccontextmanager
async def running_stack(data_dir: Path) -> AsyncIterator[Stack]:
    """Start the stand-ins and the service with every door; stop them afterwards."""
    crashes = _Crashes()
    root = logging.getLogger()
    root.addHandler(crashes)
    try:
        with pytest.MonkeyPatch.context() as patch:
            # Slack and Teams allow about one write per second and conversation; the fuzz writes
            # hundreds of answers, so the doors' pacing is off here (the rest is as deployed).
            fast_slack = slack.DoorOptions(write_interval=0.0)
            fast_teams = teams.TeamsOptions(pacing=Pacing(stream_interval=0.0))
            patch.setitem(server.DOORS, "slack", partial(slack.setup, options=fast_slack))
            patch.setitem(server.DOORS, "teams", partial(teams.mount, options=fast_teams))
            async with (
                FakeOpenAI(answer=ANSWER, chunk_chars=len(ANSWER)) as openai,
                slack_api() as slack_stand_in,
                BotConnector() as connector,
            ):
                settings = IsolatedSettings(
                    openai_base_url=openai.base_url,
                    openai_api_key=SecretStr("sk-fuzz"),
                    llm_max_retries=0,
                    llm_timeout=10.0,
                    data_dir=data_dir,
                    slack_bot_token=SecretStr("xoxb-fuzz"),
                    slack_signing_secret=SecretStr(SIGNING_SECRET),
                    slack_api_url=slack_stand_in.url,
                    # Only a host that cannot exist is trusted for Kakao callbacks: a fuzzed body
                    # must never make the service POST anywhere real.
                    kakao_callback_domain="callback.invalid",
                    # Hundreds of messages from one user in seconds: rate limits are not under test.
                    rate_user="off",
                    rate_tenant="off",
                )
                async with run_service(settings) as service, aiohttp.ClientSession() as http:
                    yield Stack(
                        service=service,
                        http=http,
                        openai=openai,
                        slack=slack_stand_in,
                        connector=connector,
                        crashes=crashes,
                    )
    finally:
        root.removeHandler(crashes)
