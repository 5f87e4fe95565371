"""POST /kakao/skill: answer inside Kakao's fixed 5 s, or through the single-use callback URL.

A request is answered one of three ways:

- inline, when the answer is ready within ``kakao_budget`` seconds;
- ``useCallback`` at once, then one POST of the answer to ``userRequest.callbackUrl``
  (valid for one minute, usable once) when the bot has callbacks enabled;
- a short "still working" message otherwise; the finished answer is kept and given first
  on the user's next message.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid

from aiohttp import web

from adapters.kakao.callback import CallbackDelivery
from adapters.kakao.translate import (
    BadSkillRequest,
    SkillRequest,
    is_builder_test,
    markdown_to_plain,
    parse_skill_request,
    to_callback_ack,
    to_inbound,
    to_skill_response,
    trusted_callback_url,
)
from adapters.metrics import METRICS
from adapters.middleware import error_json
from adapters.runtime import ENGINE, HTTP, SETTINGS, TASKS
from adapters.settings import Settings
from core.engine import Engine
from core.errors import DariError
from core.messages import Lang, detect_language, say
from core.persona import Persona
from core.types import Inbound

__all__ = ["SECRET_HEADER", "setup"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Dari-Skill-Secret"
PENDING_TTL = 24 * 3600.0


def setup(app: web.Application, settings: Settings) -> str:
    """Mount the skill routes; the status line says whether the door is protected."""
    app.router.add_post("/kakao/skill", skill)
    app.router.add_post("/kakao/skill/{bot}", skill)
    if settings.kakao_skill_secret is None:
        return "on at /kakao/skill, OPEN: set KAKAO_SKILL_SECRET to require a shared secret"
    return "on at /kakao/skill, shared secret required"


def _json(body: dict[str, object]) -> web.Response:
    # Kakao reads UTF-8; escaping every Hangul syllable would triple the body.
    return web.json_response(body, dumps=_dumps)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _authorized(request: web.Request, settings: Settings) -> bool:
    if settings.kakao_skill_secret is None:
        return True
    expected = settings.kakao_skill_secret.get_secret_value().encode()
    given = request.headers.get(SECRET_HEADER) or request.query.get("secret", "")
    return hmac.compare_digest(given.encode(), expected)


def _callback_url(payload: SkillRequest, settings: Settings) -> str | None:
    # Skill requests are unsigned: only POST answers back to Kakao's own HTTPS hosts, unless an
    # operator (or a test on loopback) explicitly allows any URL with "*".
    if settings.kakao_callback_domain == "*":
        return payload.userRequest.callbackUrl or None
    return trusted_callback_url(payload, allowed_domain=settings.kakao_callback_domain)


async def _full_answer(engine: Engine, inbound: Inbound, persona: Persona, lang: Lang) -> str:
    try:
        text = await engine.respond(inbound)
    except DariError as error:
        log.error("answer failed: %s", type(error).__name__, extra={"conversation": inbound.key.id})
        text = say("llm_failed", lang=lang, level=persona.speech_level)
    return markdown_to_plain(text)


async def skill(request: web.Request) -> web.StreamResponse:
    received = time.monotonic()
    settings = request.app[SETTINGS]
    if not _authorized(request, settings):
        return error_json(401, "missing or wrong skill secret")
    try:
        payload = parse_skill_request(await request.read())
    except BadSkillRequest as error:
        return error_json(400, str(error))
    engine = request.app[ENGINE]
    bot = request.match_info.get("bot", "default")
    persona = engine.persona(bot)
    if persona.id != bot:
        return error_json(404, f"no bot named {bot!r}")

    inbound = to_inbound(payload, bot=bot, message_id=uuid.uuid4().hex)
    lang = detect_language(inbound.text, persona.language)
    level = persona.speech_level
    metrics = request.app[METRICS]
    tasks = request.app[TASKS]
    store = engine.store

    earlier = await store.pop_pending(inbound.key)
    first = [say("kakao_pending_intro", lang=lang, level=level) + "\n\n" + earlier] if earlier else []
    answer = tasks.spawn(_full_answer(engine, inbound, persona, lang), name="kakao-answer")
    callback_url = None if is_builder_test(payload) else _callback_url(payload, settings)
    # With a callback URL the user sees Kakao's waiting bubble at once instead of a silent wait,
    # so only a quick answer (a command, a short reply) is worth waiting for.
    limit = settings.kakao_callback_budget if callback_url else settings.kakao_budget
    budget = limit - (time.monotonic() - received)
    try:
        text = await asyncio.wait_for(asyncio.shield(answer), timeout=max(budget, 0.0))
    except TimeoutError:
        pass
    else:
        if not first and (late := await store.pop_pending(inbound.key)):
            # An earlier slow answer finished while this message waited for its turn.
            first = [say("kakao_pending_intro", lang=lang, level=level) + "\n\n" + late]
        metrics.kakao_deliveries.labels("inline").inc()
        texts = [*first, text]
        return _json(to_skill_response(texts, quick_replies=persona.quick_replies, lang=lang, level=level))

    if callback_url:
        delivery = CallbackDelivery(
            http=request.app[HTTP],
            url=callback_url,
            deadline=received + settings.kakao_callback_window,
            metrics=metrics,
        )
        tasks.spawn(
            delivery.run(answer, first=first, persona=persona, lang=lang, key=inbound.key, store=store),
            name="kakao-callback",
        )
        metrics.kakao_deliveries.labels("callback").inc()
        return _json(to_callback_ack(say("kakao_waiting", lang=lang, level=level)))

    tasks.spawn(_keep_for_later(answer, inbound, engine), name="kakao-pending")
    metrics.kakao_deliveries.labels("pending").inc()
    texts = [*first, say("kakao_still_working", lang=lang, level=level)]
    return _json(to_skill_response(texts, quick_replies=(), lang=lang, level=level))


async def _keep_for_later(answer: asyncio.Task[str], inbound: Inbound, engine: Engine) -> None:
    text = await answer
    await engine.store.put_pending(inbound.key, text, ttl=PENDING_TTL)
