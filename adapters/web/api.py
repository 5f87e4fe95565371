"""The console's JSON API: bots, status, and a chat turn streamed as Server-Sent Events.

``POST /console/api/chat`` takes ``{"bot", "text", "session"}`` and answers
``text/event-stream``: one ``delta`` event per piece of the answer (``{"text": ...}``), then
``done`` with the whole answer, or ``error`` with a Korean sentence. Data lines are JSON, so
line breaks in the answer never break the framing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from adapters.health import READINESS
from adapters.middleware import error_json
from adapters.runtime import ENGINE
from adapters.settings import Settings
from adapters.web import messages
from adapters.web.status import doors
from core.errors import DariError
from core.persona import Persona
from core.types import ConversationKey, Inbound

__all__ = ["MAX_BODY_BYTES", "MAX_TEXT_CHARS", "ChatRequest", "ConsoleAPI", "to_inbound"]

log = logging.getLogger(__name__)

# A console message is a chat message: these bound what one request can cost in LLM tokens.
MAX_TEXT_CHARS = 4000
MAX_BODY_BYTES = 32 * 1024

PLATFORM = "web"
TENANT = "console"


class ChatRequest(BaseModel):
    """The body of ``POST /console/api/chat``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    bot: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = "default"
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
    session: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


def to_inbound(chat: ChatRequest, *, message_id: str) -> Inbound:
    """The engine's message for a console chat request: a direct chat, one per browser session."""
    key = ConversationKey(platform=PLATFORM, tenant=TENANT, conversation=chat.session, bot=chat.bot)
    return Inbound(key=key, message_id=message_id, user_id=chat.session, text=chat.text, is_direct=True)


def _event(name: str, data: Mapping[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


class ConsoleAPI:
    """The API handlers; personas are loaded once when the console is mounted."""

    def __init__(self, *, settings: Settings, personas: Mapping[str, Persona]) -> None:
        self._settings = settings
        self._personas = dict(personas)

    async def bots(self, request: web.Request) -> web.Response:
        listed = [
            {
                "id": p.id,
                "name": p.name,
                "greeting": p.greeting,
                "quick_replies": list(p.quick_replies),
            }
            for p in sorted(self._personas.values(), key=lambda p: (p.id != "default", p.id))
        ]
        return web.json_response({"bots": listed, "default": "default"}, dumps=_dumps)

    async def status(self, request: web.Request) -> web.Response:
        ready, checks = await request.app[READINESS].report()
        body = {
            "ready": ready,
            "checks": checks,
            "doors": [door.as_json() for door in doors(self._settings)],
        }
        return web.json_response(body, dumps=_dumps)

    async def _parse(self, request: web.Request) -> ChatRequest | web.Response:
        if request.content_type != "application/json":
            return error_json(415, messages.BAD_CONTENT_TYPE)
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            return error_json(413, messages.TOO_LARGE.format(chars=MAX_TEXT_CHARS))
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deeply, 5,000 digits
            return error_json(400, messages.BAD_JSON)
        try:
            chat = ChatRequest.model_validate(body)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            if first["type"] == "string_too_long" and where == "text":
                return error_json(413, messages.TOO_LARGE.format(chars=MAX_TEXT_CHARS))
            return error_json(400, messages.BAD_REQUEST.format(detail=f"{where}: {first['msg']}"))
        if chat.bot not in self._personas:
            return error_json(404, messages.UNKNOWN_BOT.format(bot=chat.bot), code="unknown_bot")
        return chat

    async def chat(self, request: web.Request) -> web.StreamResponse:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        inbound = to_inbound(parsed, message_id=uuid.uuid4().hex)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx would otherwise hold the stream back
            }
        )
        await response.prepare(request)
        parts: list[str] = []
        gone = False

        async def send(event: bytes) -> None:
            nonlocal gone
            if gone:
                return
            try:
                await response.write(event)
            except ConnectionError:
                # The tab was closed: finish the turn anyway so that it is remembered.
                gone = True

        try:
            async for delta in request.app[ENGINE].stream(inbound):
                parts.append(delta)
                await send(_event("delta", {"text": delta}))
        except DariError as error:
            log.warning(
                "console answer failed: %s", type(error).__name__, extra={"conversation": inbound.key.id}
            )
            await send(_event("error", {"message": messages.FAILED}))
        else:
            await send(_event("done", {"text": "".join(parts)}))
        if not gone:
            await response.write_eof()
        return response
