"""A small OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

It speaks enough of the Chat Completions API for the real ``openai`` client: streaming SSE
chunks in the ``chat.completion.chunk`` shape ending with ``data: [DONE]``, plain JSON
answers, ``GET /v1/models``, and the Azure OpenAI paths (``/openai/deployments/{name}/...``).
Tests script it (failures, latency, broken streams) and read back exactly what it received.

Use it as an async context manager, or through the ``fake_openai`` fixture when this module
is loaded as a pytest plugin::

    async with FakeOpenAI(answer="안녕하세요") as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import pytest_asyncio
from aiohttp import web

__all__ = ["Answer", "Call", "Failure", "FakeOpenAI", "StreamBreak", "fake_openai"]

Answer = str | Callable[[list[dict[str, Any]]], str]
"""The answer text, or a function from the request's messages to it."""

BreakHow = Literal["disconnect", "truncate", "garbage", "wrong_shape", "error_event"]

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(frozen=True, slots=True)
class Failure:
    """One scripted error answer, shaped like OpenAI's.

    Attributes:
        status: the HTTP status.
        retry_after: the ``Retry-After`` header value, if any (seconds or an HTTP date).
        retry_after_ms: the ``retry-after-ms`` header value, if any.
        message: the error message in the JSON body.
    """

    status: int
    retry_after: str | None = None
    retry_after_ms: str | None = None
    message: str = "scripted failure"

    def body(self) -> dict[str, Any]:
        kind, code = _ERROR_KINDS.get(self.status, ("server_error", None))
        return {"error": {"message": self.message, "type": kind, "param": None, "code": code}}

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = self.retry_after_ms
        return headers


@dataclass(frozen=True, slots=True)
class StreamBreak:
    """A streaming answer that goes wrong after ``after`` content chunks.

    ``disconnect`` drops the connection without ending the HTTP body; ``truncate`` ends the
    body cleanly but without a finish reason or ``[DONE]`` (a proxy cutting the stream);
    ``garbage`` sends an event that is not JSON; ``wrong_shape`` sends JSON that is not a
    chunk; ``error_event`` sends OpenAI's mid-stream ``{"error": ...}`` event. The last three
    then end the body cleanly.
    """

    after: int
    how: BreakHow = "disconnect"


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass(kw_only=True, eq=False)
class FakeOpenAI:
    """An OpenAI-compatible HTTP server on 127.0.0.1 with a free port.

    Attributes:
        answer: what the model says.
        chunk_chars: characters of the answer per streamed content chunk.
        chunk_delay: seconds between streamed chunks.
        response_delay: seconds before the response headers (time to first byte).
        first_token_delay: seconds between the headers and the first content chunk.
        write_size: when set, each SSE event is written in pieces of this many bytes, so
            that multi-byte UTF-8 characters arrive split across HTTP chunks.
        send_usage: always end streams with a usage chunk that has no choices (as with
            ``stream_options.include_usage``, which is honoured too).
        api_key: when set, requests without this key get OpenAI's 401, which echoes the
            key they sent (a worst case for secrets in error messages).
        models: the ids listed by ``GET /v1/models``.
        requests: the JSON body of every chat completion request, in arrival order.
        calls: every HTTP request, in arrival order.
    """

    answer: Answer = "안녕하세요. 무엇을 도와드릴까요?"
    chunk_chars: int = 3
    chunk_delay: float = 0.0
    response_delay: float = 0.0
    first_token_delay: float = 0.0
    write_size: int | None = None
    send_usage: bool = False
    api_key: str | None = None
    models: tuple[str, ...] = ("gpt-4o-mini",)
    requests: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    _failures: deque[Failure] = field(default_factory=deque, init=False, repr=False)
    _breaks: deque[StreamBreak] = field(default_factory=deque, init=False, repr=False)
    _connections: set[asyncio.Task[Any]] = field(default_factory=set, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _port: int = field(default=0, init=False, repr=False)

    # -- scripting ---------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        message: str = "scripted failure",
    ) -> None:
        """Answer the next ``times`` requests (of any kind) with this error."""
        failure = Failure(status, retry_after=retry_after, retry_after_ms=retry_after_ms, message=message)
        self._failures.extend([failure] * times)

    def break_stream(self, *, after: int, how: BreakHow = "disconnect") -> None:
        """Make the next streaming chat completion go wrong after ``after`` content chunks."""
        self._breaks.append(StreamBreak(after=after, how=how))

    # -- lifetime ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``, for Azure-style clients that add their own path."""
        if self._runner is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"{self.origin}/v1"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_get("/openai/models", self._models)
        # Without handler cancellation a client that gave up would leave our delays running.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def close(self) -> None:
        # Handlers still pausing or streaming would hold up the runner's graceful shutdown.
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- handlers ----------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.StreamResponse:
        refused = await self._receive(request, body=None)
        if refused is not None:
            return refused
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "dari-tests"} for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        refused = await self._receive(request, body=body)
        if refused is not None:
            return refused
        text = self.answer if isinstance(self.answer, str) else self.answer(list(body.get("messages", [])))
        model = str(body.get("model") or request.match_info.get("deployment", ""))
        if not body.get("stream"):
            return web.json_response(_completion(text, model))
        options = body.get("stream_options") or {}
        usage = self.send_usage or bool(options.get("include_usage"))
        broken = self._breaks.popleft() if self._breaks else None
        return await self._stream(request, text, model, usage=usage, broken=broken)

    async def _receive(self, request: web.Request, *, body: dict[str, Any] | None) -> web.Response | None:
        """Record the request and answer a scripted failure or a wrong key; None to go on."""
        # aiohttp runs a connection's handlers in one task; remember it so close() can stop it.
        task = asyncio.current_task()
        if task is not None and task not in self._connections:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        self.calls.append(
            Call(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        if self._failures:
            failure = self._failures.popleft()
            return web.json_response(failure.body(), status=failure.status, headers=failure.headers())
        if self.api_key is not None:
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            sent = request.headers.get("api-key") or bearer
            if sent != self.api_key:
                failure = Failure(401, message=f"Incorrect API key provided: {sent}.")
                return web.json_response(failure.body(), status=401)
        return None

    async def _stream(
        self, request: web.Request, text: str, model: str, *, usage: bool, broken: StreamBreak | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        base = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_dari",
        }

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {**base, "choices": choices, **extra}
            if usage:
                chunk.setdefault("usage", None)
            await self._write(response, f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n")

        await send([_choice({"role": "assistant", "content": "", "refusal": None})])
        if self.first_token_delay:
            await asyncio.sleep(self.first_token_delay)
        pieces = [text[i : i + self.chunk_chars] for i in range(0, len(text), max(1, self.chunk_chars))]
        for index, piece in enumerate(pieces):
            if broken is not None and index == broken.after:
                return await self._break(request, response, broken)
            if index and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await send([_choice({"content": piece})])
        if broken is not None:
            return await self._break(request, response, broken)
        await send([_choice({}, finish_reason="stop")])
        if usage:
            await send([], usage=_usage(text))
        await self._write(response, "data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _write(self, response: web.StreamResponse, event: str) -> None:
        data = event.encode()
        size = self.write_size or len(data)
        for start in range(0, len(data), size):
            await response.write(data[start : start + size])

    async def _break(
        self, request: web.Request, response: web.StreamResponse, broken: StreamBreak
    ) -> web.StreamResponse:
        if broken.how == "disconnect":
            # Closing the socket mid-body leaves the client with an incomplete chunked body.
            if request.transport is not None:
                request.transport.close()
            return response
        if broken.how == "garbage":
            await self._write(response, "data: {this is not json\n\n")
        elif broken.how == "wrong_shape":
            await self._write(response, 'data: {"choices": "none today"}\n\n')
        elif broken.how == "error_event":
            error = {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
            await self._write(response, f"data: {json.dumps(error)}\n\n")
        await response.write_eof()
        return response


def _choice(delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _usage(text: str) -> dict[str, int]:
    # Characters stand in for tokens: tests only need plausible, deterministic numbers.
    return {"prompt_tokens": 10, "completion_tokens": len(text), "total_tokens": 10 + len(text)}


def _completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-dari",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_dari",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(text),
    }


@pytest_asyncio.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A started FakeOpenAI, closed after the test."""
    async with FakeOpenAI() as server:
        yield server
