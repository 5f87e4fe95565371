"""A Slack Web API stand-in on 127.0.0.1: records every call and answers the way Slack does.

It keeps the messages it was asked to post, stream and edit, so tests can read a thread as
a person in Slack would see it. It can answer 429 with ``Retry-After``, refuse streaming
(``unknown_method``, as a Slack without chat streaming), and serve Socket Mode: the
connection URL from ``apps.connections.open`` is a WebSocket on this server, and
``push`` sends an envelope through it the way Slack delivers events.

Tests wait on ``wait_for`` / ``wait_for_ack`` (an ``asyncio.Condition``), never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["IDENTITY", "Call", "Message", "SlackAPI", "slack_api"]

# auth.test of the app under test: the bot user of the recorded app_mention payloads (W111)
# and the bot id of the recorded self-message payload (BZYBOTHED).
IDENTITY: dict[str, Any] = {
    "ok": True,
    "url": "https://dari-test.slack.com/",
    "team": "dari test",
    "user": "dari",
    "team_id": "T111",
    "user_id": "W111",
    "bot_id": "BZYBOTHED",
    "is_enterprise_install": False,
}

_STREAM_METHODS = frozenset({"chat.startStream", "chat.appendStream", "chat.stopStream"})


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API request: the method, its parameters (query, form or JSON), when, and the status sent."""

    method: str
    params: dict[str, Any]
    at: float
    status: int


@dataclass(slots=True)
class Message:
    """A message as Slack would show it."""

    channel: str
    ts: str
    thread_ts: str
    text: str
    streamed: bool = False
    streaming: bool = False
    edits: int = 0


def _streamed_text(params: dict[str, Any]) -> str:
    text = str(params.get("markdown_text") or "")
    chunks = params.get("chunks")
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    for chunk in chunks or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += str(chunk.get("text", ""))
    return text


@dataclass(slots=True)
class SlackAPI:
    """The stand-in. Start it with ``slack_api()``; point ``SLACK_API_URL`` at ``url``.

    Attributes:
        identity: what auth.test answers.
        users: users.info answers by user id (the ``user`` object).
        streaming: False makes chat.startStream/appendStream/stopStream answer ``unknown_method``.
        calls: every request, in arrival order.
        messages: posted and streamed messages by ts, in creation order.
        ephemerals: chat.postEphemeral and response_url bodies.
        acks: Socket Mode acknowledgements received, by envelope id.
    """

    identity: dict[str, Any] = field(default_factory=lambda: dict(IDENTITY))
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    streaming: bool = True
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    port: int = 0
    _throttled: dict[str, list[int]] = field(default_factory=dict)
    _failing: dict[str, list[str]] = field(default_factory=dict)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    _last_ts: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def response_url(self) -> str:
        """A slash command ``response_url`` that lands in ``ephemerals``."""
        return f"http://127.0.0.1:{self.port}/commands/response"

    def throttle(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``Retry-After``."""
        self._throttled.setdefault(method, []).extend([retry_after] * times)

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": error}``."""
        self._failing.setdefault(method, []).extend([error] * times)

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.status == 200]

    def thread(self, channel: str, thread_ts: str = "") -> list[Message]:
        """The bot's messages in one thread (or, with "", at the channel's top level)."""
        return [m for m in self.messages.values() if m.channel == channel and m.thread_ts == thread_ts]

    async def wait_for(self, method: str, count: int = 1, *, timeout: float = 10.0) -> list[Call]:
        """Wait until ``method`` was answered ``count`` times; its calls."""
        await self._wait(lambda: len(self.called(method)) >= count, timeout)
        return self.called(method)

    async def wait_for_ack(self, envelope_id: str, *, timeout: float = 10.0) -> dict[str, Any]:
        await self._wait(lambda: envelope_id in self.acks, timeout)
        return self.acks[envelope_id]

    async def wait_connected(self, *, timeout: float = 10.0) -> None:
        await self._wait(lambda: bool(self._sockets), timeout)

    async def _wait(self, ready: Callable[[], bool], timeout: float) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(ready), timeout)

    async def _changed_now(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def push(self, payload: dict[str, Any], *, kind: str = "events_api", retry_attempt: int = 0) -> str:
        """Deliver ``payload`` over Socket Mode as Slack does; the envelope id."""
        envelope_id = uuid.uuid4().hex
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/commands/response", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(await request.post())
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        if self._throttled.get(method):
            retry_after = self._throttled[method].pop(0)
            await self._record(method, params, 429)
            body = {"ok": False, "error": "ratelimited"}
            return web.json_response(body, status=429, headers={"Retry-After": str(retry_after)})
        if self._failing.get(method):
            answer: dict[str, Any] = {"ok": False, "error": self._failing[method].pop(0)}
        elif method in _STREAM_METHODS and not self.streaming:
            answer = {"ok": False, "error": "unknown_method"}
        else:
            answer = self._answer(method, params)
        await self._record(method, params, 200)
        return web.json_response(answer)

    async def _record(self, method: str, params: dict[str, Any], status: int) -> None:
        self.calls.append(Call(method, params, time.monotonic(), status))
        await self._changed_now()

    def _new_message(self, params: dict[str, Any], text: str, *, streamed: bool) -> Message:
        # Stamped like Slack's: the time of creation (in microseconds, unique, increasing).
        self._last_ts = max(time.time(), self._last_ts + 1e-6)
        ts = f"{self._last_ts:.6f}"
        message = Message(
            channel=str(params.get("channel", "")),
            ts=ts,
            thread_ts=str(params.get("thread_ts") or ""),
            text=text,
            streamed=streamed,
            streaming=streamed,
        )
        self.messages[ts] = message
        return message

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return self.identity
        if method == "users.info":
            user = self.users.get(str(params.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "chat.postMessage":
            message = self._new_message(params, str(params.get("text", "")), streamed=False)
            return {
                "ok": True,
                "channel": message.channel,
                "ts": message.ts,
                "message": {"text": message.text},
            }
        if method == "chat.startStream":
            message = self._new_message(params, _streamed_text(params), streamed=True)
            return {"ok": True, "channel": message.channel, "ts": message.ts}
        if method in ("chat.update", "chat.appendStream", "chat.stopStream"):
            found = self.messages.get(str(params.get("ts")))
            if found is None:
                return {"ok": False, "error": "message_not_found"}
            if method == "chat.update":
                found.text, found.edits = str(params.get("text", "")), found.edits + 1
            elif not found.streaming:
                return {"ok": False, "error": "message_not_in_streaming_state"}
            else:
                found.text += _streamed_text(params)
                found.streaming = method == "chat.appendStream"
            return {"ok": True, "channel": found.channel, "ts": found.ts}
        if method in ("conversations.replies", "conversations.history"):
            channel, thread = str(params.get("channel", "")), str(params.get("ts") or "")
            oldest = str(params.get("oldest") or "")
            replies = [
                {"type": "message", "ts": m.ts, "text": m.text, "user": self.identity["user_id"],
                 "bot_id": self.identity["bot_id"]}
                for m in self.messages.values()
                if m.channel == channel and m.thread_ts == thread and float(m.ts) > float(oldest or 0)
            ]  # fmt: skip
            replies.sort(key=lambda m: str(m["ts"]))
            return {"ok": True, "messages": replies, "has_more": False}
        if method == "chat.postEphemeral":
            self.ephemerals.append(params)
            return {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method.startswith("assistant.threads."):
            return {"ok": True}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return {"ok": False, "error": "unknown_method"}

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.ephemerals.append(body)
        await self._record("response_url", body, 200)
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._sockets.append(socket)
        await self._changed_now()
        try:
            async for frame in socket:
                if frame.type == WSMsgType.TEXT:
                    ack = json.loads(frame.data)
                    self.acks[str(ack.get("envelope_id"))] = ack
                    await self._changed_now()
        finally:
            self._sockets.remove(socket)
        return socket


@asynccontextmanager
async def slack_api(**options: Any) -> AsyncIterator[SlackAPI]:
    """A running stand-in, closed on exit."""
    api = SlackAPI(**options)
    await api.start()
    try:
        yield api
    finally:
        await api.close()
