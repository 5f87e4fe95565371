"""While shutting down, new requests get 503 JSON and /readyz says "draining"; /healthz stays 200."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.draining import DRAINING, Draining, refuse_while_draining
from adapters.middleware import errors_as_json


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def test_requests_are_refused_only_once_draining_began() -> None:
    app = web.Application(middlewares=[refuse_while_draining, errors_as_json])
    app[DRAINING] = Draining()
    for path in ("/healthz", "/readyz", "/metrics"):
        app.router.add_get(path, ok)
    app.router.add_post("/slack/events", ok)
    async with TestClient(TestServer(app)) as client:
        assert (await client.post("/slack/events")).status == 200
        assert (await client.get("/readyz")).status == 200
        app[DRAINING].on = True
        refused = await client.post("/slack/events")
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert (await refused.json())["error"]["code"] == "draining"
        ready = await client.get("/readyz")
        assert (ready.status, await ready.json()) == (503, {"status": "draining"})
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == 200
