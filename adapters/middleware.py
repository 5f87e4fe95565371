"""HTTP middlewares: a request id on every request, and errors as JSON, never a stack trace."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters import logs

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


_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# W3C trace context: version-traceid-parentid-flags
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
    trace = _TRACEPARENT.match(request.headers.get("traceparent", "").strip().lower())
    request[REQUEST_ID] = rid
    logs.request_id.set(rid)
    logs.trace_id.set(trace.group(1) if trace else rid)
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
