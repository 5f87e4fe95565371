"""HTTP middlewares: a request id on every request, and errors as JSON, never a stack trace."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["error_json", "errors_as_json", "request_id"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


def error_json(status: int, message: str, *, code: str = "") -> web.Response:
    """The one shape of every error body: {"error": {"code", "message"}}."""
    body = {"error": {"code": code or _CODES.get(status, "error"), "message": message}}
    return web.json_response(body, status=status)


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    request[REQUEST_ID] = rid
    response = await handler(request)
    response.headers.setdefault("X-Request-Id", rid)
    return response


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason if exc.status != 413 else "request body is too large"
        return error_json(exc.status, message)
    except Exception:
        # A bug of ours: log it with its trace, answer without one.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_json(500, "internal error", code="internal")
