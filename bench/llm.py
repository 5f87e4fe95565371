"""A lean OpenAI-compatible stand-in LLM for benchmarks: set latency and streaming speed, cheap at any rate.

It answers ``POST .../chat/completions`` with a streamed ``chat.completion.chunk`` SSE body:
the role chunk at once, the first content chunk ``first_token`` seconds after the request, then
``chunks - 1`` more ``chunk_delay`` apart, a finish chunk and ``[DONE]``. Every byte of the
answer is encoded once per timing, and timing runs on ``loop.call_later``: a request costs a
header parse and a few socket writes, so the stand-in is not what limits a benchmark. (The
test suite's FakeOpenAI parses and records every request, which is right for tests and too
dear here.)

With ``record=True`` it notes, per tag, when the first content chunk left: the benchmark puts
a tag such as ``tagqzxab`` in the user's text and reads the time back (time to first visible text).

Run alone: ``python -m bench.llm --port 8100 --first-token 0.05 --chunks 20 --chunk-delay 0.01``.
``POST /bench/timing`` (JSON of ``Timing`` fields) changes the timing; ``GET /bench/stats`` counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["ANSWER", "MARKER", "StandInLLM", "Timing", "tag_for"]

# What the stand-in model says: business Korean with a little Markdown, like a real short answer.
MARKER = "연차 신청"
ANSWER = (
    "연차 신청은 사내 포털의 **근태 관리** 메뉴에서 할 수 있어요. 신청 절차는 다음과 같아요.\n"
    "- 포털에 로그인한 뒤 근태 관리에서 휴가 신청을 눌러요.\n"
    "- 휴가 종류와 날짜를 고르고, 사유를 짧게 적어요.\n"
    "- 팀장님 승인이 나면 메일로 알림이 와요.\n"
    "연차는 보통 입사 1년 뒤부터 15일이 주어지고, 남은 일수는 같은 화면에서 확인할 수 있어요. "
    "더 궁금한 점이 있으면 인사팀에 문의해 주세요."
)
MODEL = "gpt-4o-mini"
_TAG = re.compile(rb"tag([a-z]{2,16})\b")


def tag_for(number: int) -> str:
    """A tag made only of letters: digits in a message could be masked as an account number."""
    letters = ""
    number += 26 * 26  # at least three letters
    while number:
        number, rest = divmod(number, 26)
        letters = chr(ord("a") + rest) + letters
    return f"tag{letters}"


@dataclass(frozen=True, slots=True)
class Timing:
    """How the stand-in model answers.

    Attributes:
        first_token: seconds from the request to the first content chunk.
        chunks: content chunks in the answer.
        chunk_delay: seconds between content chunks.
        answer: the text, split evenly over ``chunks``.
    """

    first_token: float = 0.05
    chunks: int = 20
    chunk_delay: float = 0.01
    answer: str = ANSWER

    @property
    def total(self) -> float:
        """Seconds from the request to the last content chunk."""
        return self.first_token + max(self.chunks - 1, 0) * self.chunk_delay

    @classmethod
    def lasting(cls, seconds: float, *, chunks: int = 20, chunk_delay: float = 0.01) -> Timing:
        """A timing whose whole answer takes ``seconds``."""
        return cls(
            first_token=max(seconds - (chunks - 1) * chunk_delay, 0.0), chunks=chunks, chunk_delay=chunk_delay
        )


def _frame(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return _frame(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")


@dataclass(frozen=True, slots=True)
class _Plan:
    """A timing's answer, encoded once."""

    timing: Timing
    head: bytes
    pieces: tuple[bytes, ...]
    tail: bytes

    @classmethod
    def of(cls, timing: Timing) -> _Plan:
        text, n = timing.answer, max(timing.chunks, 1)
        cuts = [len(text) * i // n for i in range(n + 1)]
        parts = [text[cuts[i] : cuts[i + 1]] for i in range(n)]
        headers = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
        )
        head = headers + _event({"role": "assistant", "content": "", "refusal": None})
        pieces = tuple(_event({"content": part}) for part in parts if part)
        tail = _event({}, "stop") + _frame(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        return cls(timing=timing, head=head, pieces=pieces, tail=tail)


def _response(status: str, body: object) -> bytes:
    raw = json.dumps(body).encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode() + raw


class StandInLLM:
    """The stand-in server: ``await start()``, point ``OPENAI_BASE_URL`` at ``base_url``, then ``close()``."""

    def __init__(self, timing: Timing | None = None, *, record: bool = False) -> None:
        self._plan = _Plan.of(timing or Timing())
        self.record = record
        self.requests = 0
        self.first_chunk_at: dict[str, float] = {}  # tag -> time.monotonic() of its first content chunk
        self.last_chunk_at: dict[str, float] = {}  # tag -> time.monotonic() of its last content chunk
        self._server: asyncio.Server | None = None
        self.connections: set[asyncio.Transport] = set()
        self.port = 0

    @property
    def timing(self) -> Timing:
        return self._plan.timing

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def configure(self, timing: Timing) -> None:
        """Answer later requests with this timing."""
        self._plan = _Plan.of(timing)

    async def start(self, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self.connections):
                transport.close()
            await self._server.wait_closed()

    def stats(self) -> dict[str, Any]:
        timing = asdict(self.timing)
        timing["answer"] = len(self.timing.answer)
        return {"requests": self.requests, "timing": timing, "tags": len(self.first_chunk_at)}

    def control(self, method: str, path: str, body: bytes) -> bytes:
        if method == "POST" and path == "/bench/timing":
            fields = json.loads(body or b"{}")
            self.configure(replace(self.timing, **fields))
            return _response("200 OK", self.stats())
        if method == "GET" and path == "/bench/stats":
            return _response("200 OK", self.stats())
        if method == "GET" and path.endswith("/models"):
            return _response("200 OK", {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        return _response(
            "404 Not Found", {"error": {"message": "not found", "type": "invalid_request_error"}}
        )


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; requests are handled one after the other."""

    def __init__(self, server: StandInLLM) -> None:
        self._server = server
        self._buffer = bytearray()
        self._busy = False
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._server.connections.discard(self._transport)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._next()

    def _next(self) -> None:
        while not self._busy and self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ", 2)[:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            self._handle(method, target.split("?", 1)[0], body)

    def _handle(self, method: str, path: str, body: bytes) -> None:
        assert self._transport is not None
        if method == "POST" and path.endswith("/chat/completions"):
            server = self._server
            server.requests += 1
            tag = ""
            if server.record and (found := _TAG.findall(body)):
                tag = "tag" + found[-1].decode()  # the newest user message is the last one
            plan = server._plan
            self._busy = True
            self._transport.write(plan.head)
            self._loop.call_later(plan.timing.first_token, self._piece, plan, 0, tag)
            return
        self._transport.write(self._server.control(method, path, body))

    def _piece(self, plan: _Plan, index: int, tag: str) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if index < len(plan.pieces):
            transport.write(plan.pieces[index])
            if index == 0 and tag:
                self._server.first_chunk_at.setdefault(tag, time.monotonic())
            if index + 1 < len(plan.pieces):
                self._loop.call_later(plan.timing.chunk_delay, self._piece, plan, index + 1, tag)
                return
            if tag:
                self._server.last_chunk_at.setdefault(tag, time.monotonic())
        transport.write(plan.tail)
        self._busy = False
        self._next()


async def _serve(port: int, timing: Timing) -> None:
    server = StandInLLM(timing)
    await server.start(port)
    print(json.dumps({"port": server.port}), flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--first-token", type=float, default=0.05)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk-delay", type=float, default=0.01)
    args = parser.parse_args()
    timing = Timing(first_token=args.first_token, chunks=args.chunks, chunk_delay=args.chunk_delay)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, timing))


if __name__ == "__main__":
    main()
