"""Shutting down gracefully: once SIGTERM arrives, new requests get 503 and /readyz says so.

aiohttp closes the listening socket first, so new connections go to other processes; this
catches the requests that still arrive on open keep-alive connections while answers in flight
finish. /healthz and /metrics keep answering: the process is alive until it exits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters.middleware import error_json

__all__ = ["DRAINING", "Draining", "refuse_while_draining"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ALWAYS = frozenset({"/healthz", "/metrics"})


class Draining:
    """Whether the service has begun to shut down."""

    def __init__(self) -> None:
        self.on = False


DRAINING = web.AppKey("draining", Draining)


@web.middleware
async def refuse_while_draining(request: web.Request, handler: Handler) -> web.StreamResponse:
    draining = request.app.get(DRAINING)
    if draining is None or not draining.on or request.path in _ALWAYS:
        return await handler(request)
    if request.path == "/readyz":
        return web.json_response({"status": "draining"}, status=503)
    response = error_json(503, "the service is shutting down; try again", code="draining")
    response.headers["Retry-After"] = "1"
    return response
