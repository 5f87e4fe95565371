"""The floor: the least an assistant endpoint can do. One aiohttp route, one streamed LLM call, the answer.

``POST /ask`` with ``{"text": ...}`` sends the default bot's instructions and the text to the
model through the same ``openai`` client dari uses (same timeouts and retries), joins the
streamed deltas and answers ``{"text": ...}``. No memory, no masking, no logging, no prompt
building: whatever dari spends above this is its overhead.

By default the call is the client's ``chat.completions.create(stream=True)``, as anyone would
write it. ``--lean`` makes the same request through the client's generic ``post`` and reads the
chunks as plain JSON: the cheapest way through the same client, to tell dari's own overhead
apart from the cost of the client's typed path.

Run: ``python -m bench.floor --port 8200 --llm http://127.0.0.1:8100/v1``.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import AsyncIterator

import openai
from aiohttp import web

from bench.common import ROOT

__all__ = ["create_floor"]

CLIENT = web.AppKey("client", openai.AsyncOpenAI)
SYSTEM = web.AppKey("system", str)
LEAN = web.AppKey("lean", bool)


async def ask(request: web.Request) -> web.Response:
    body = await request.json()
    system, text = request.app[SYSTEM], str(body["text"])
    client = request.app[CLIENT]
    parts: list[str] = []
    if request.app[LEAN]:
        # The client's generic POST with plain JSON chunks (no per-message transform, no chunk models).
        messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
        params = {"model": "gpt-4o-mini", "messages": messages, "temperature": 0.3, "stream": True}
        events = await client.post(
            "/chat/completions",
            cast_to=object,
            body=params,
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )
        async with events:
            async for event in events:
                choices = event.get("choices") if isinstance(event, dict) else None
                for choice in choices or ():
                    if content := (choice.get("delta") or {}).get("content"):
                        parts.append(content)
        return web.json_response({"text": "".join(parts)})
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": text}],
        temperature=0.3,
        stream=True,
    )
    async with stream:
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
    return web.json_response({"text": "".join(parts)})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_floor(llm_url: str, *, lean: bool = False) -> web.Application:
    """The floor app; ``lean`` reads the stream through the client's generic POST instead of create()."""
    app = web.Application()
    app[LEAN] = lean
    with (ROOT / "bots" / "default.toml").open("rb") as bot:
        app[SYSTEM] = str(tomllib.load(bot)["instructions"]).strip()

    async def client(app: web.Application) -> AsyncIterator[None]:
        # As adapters/server.py builds it: 60 s read timeout, 5 s connect, 3 retries.
        app[CLIENT] = openai.AsyncOpenAI(
            api_key="bench", base_url=llm_url, timeout=openai.Timeout(60.0, connect=5.0), max_retries=3
        )
        yield
        await app[CLIENT].close()

    app.cleanup_ctx.append(client)
    app.router.add_post("/ask", ask)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="the floor server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--llm", required=True, help="the stand-in LLM's base URL (…/v1)")
    parser.add_argument("--lean", action="store_true", help="the client's generic POST, plain JSON chunks")
    args = parser.parse_args()
    web.run_app(
        create_floor(args.llm, lean=args.lean), host="127.0.0.1", port=args.port, print=None, access_log=None
    )


if __name__ == "__main__":
    main()
