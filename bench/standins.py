"""Lean platform stand-ins for the load generator: Slack Web API, Bot Connector, Kakao callback.

They answer the way the platforms do (as tests/support's stand-ins do) but keep only what a
benchmark reads: when the first answer text became visible and when the answer was complete,
per answer key. The load generator registers a key before it sends a message and awaits it.

Keys: Slack ``"{channel}/{thread_ts}"``; Teams the id of the activity being answered;
Kakao callback the token in the callback URL.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Arrival", "Arrivals", "StandIns"]

SLACK_IDENTITY: dict[str, Any] = {
    "ok": True,
    "url": "https://dari-bench.slack.com/",
    "team": "dari bench",
    "user": "dari",
    "team_id": "T111",
    "user_id": "W111",
    "bot_id": "BZYBOTHED",
    "is_enterprise_install": False,
}


@dataclass(slots=True)
class Arrival:
    """What reached the platform for one answer (``time.monotonic()`` values)."""

    visible: float | None = None  # the first answer text a person could read
    informative: float | None = None  # Teams' "preparing" line, which is not the answer
    done: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    body: Any = None  # the final body (Kakao callback)


class Arrivals:
    def __init__(self) -> None:
        self._by_key: dict[str, Arrival] = {}

    def expect(self, key: str) -> Arrival:
        arrival = self._by_key[key] = Arrival()
        return arrival

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    def visible(self, key: str, at: float) -> None:
        arrival = self._by_key.get(key)
        if arrival is not None and arrival.visible is None:
            arrival.visible = at

    def informative(self, key: str, at: float) -> None:
        arrival = self._by_key.get(key)
        if arrival is not None and arrival.informative is None:
            arrival.informative = at

    def done(self, key: str, at: float, body: Any = None) -> None:
        arrival = self._by_key.get(key)
        if arrival is None:
            return
        if arrival.visible is None:
            arrival.visible = at
        if not arrival.done.done():
            arrival.body = body
            arrival.done.set_result(at)


def _stream_info(body: dict[str, Any]) -> dict[str, Any]:
    for entity in body.get("entities") or ():
        if isinstance(entity, dict) and entity.get("type") == "streaminfo":
            return entity
    return {}


class StandIns:
    """One aiohttp app on 127.0.0.1 serving all three stand-ins."""

    def __init__(self) -> None:
        self.arrivals = Arrivals()
        self.slack_calls = 0
        self.teams_calls = 0
        self._slack_ts: dict[str, str] = {}  # message ts -> answer key
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def slack_api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/amer/"

    @property
    def callback_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._slack)
        app.router.add_post("/amer/v3/conversations/{conversation}/activities", self._teams)
        app.router.add_post("/amer/v3/conversations/{conversation}/activities/{reply_to}", self._teams)
        app.router.add_post("/callback/{token}", self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=4096)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- Slack Web API -----------------------------------------------------------------------

    async def _slack(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.slack_calls += 1
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(await request.post())
        channel = str(params.get("channel", ""))
        text = str(params.get("markdown_text") or params.get("text") or "")
        if method == "auth.test":
            return web.json_response(SLACK_IDENTITY)
        if method == "users.info":
            user = str(params.get("user", ""))
            profile = {"display_name": "김벤치", "real_name": "김벤치"}
            return web.json_response({"ok": True, "user": {"id": user, "name": "bench", "profile": profile}})
        if method in ("chat.startStream", "chat.postMessage"):
            n = next(self._ids)
            ts = f"{1_700_000_000 + n}.{n:06d}"
            key = f"{channel}/{params.get('thread_ts') or ''}"
            self._slack_ts[ts] = key
            if text or params.get("chunks"):
                self.arrivals.visible(key, now)
            return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": {"text": text}})
        if method in ("chat.appendStream", "chat.update", "chat.stopStream"):
            ts = str(params.get("ts", ""))
            key = self._slack_ts.get(ts, "")
            if method == "chat.stopStream":
                self._slack_ts.pop(ts, None)
                self.arrivals.done(key, now)
            elif text or params.get("chunks"):
                self.arrivals.visible(key, now)
            return web.json_response({"ok": True, "channel": channel, "ts": ts})
        return web.json_response({"ok": True})

    # -- Bot Connector -----------------------------------------------------------------------

    async def _teams(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.teams_calls += 1
        body = await request.json()
        key = request.match_info.get("reply_to", "")
        info = _stream_info(body)
        kind = str(info.get("streamType", ""))
        if body.get("type") == "message":
            self.arrivals.done(key, now, body)
            return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)
        if kind == "informative":
            self.arrivals.informative(key, now)
        elif kind == "streaming" and body.get("text"):
            self.arrivals.visible(key, now)
            return web.json_response({}, status=202)
        return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)

    # -- Kakao callback ----------------------------------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        body = json.loads(await request.read())
        self.arrivals.done(request.match_info["token"], now, body)
        result = {"taskId": "00000000-0000-0000-0000-000000000000", "status": "SUCCESS", "message": ""}
        return web.json_response({**result, "timestamp": 0})
