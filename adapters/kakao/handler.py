"""POST /kakao/skill: answer inside Kakao's fixed 5 s, or through the single-use callback URL.

A request is answered one of three ways:

- inline, when the answer is ready within ``kakao_budget`` seconds;
- ``useCallback`` at once, then one POST of the answer to ``userRequest.callbackUrl``
  (valid for one minute, usable once) when the bot has callbacks enabled;
- a short "still working" message otherwise; the finished answer is kept and given first
  on the user's next message.

The message is recorded as a job (``adapters/kakao/deliver.py`` answers it) before any of
these, so a process that dies meanwhile leaves it to another process to deliver.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid

from aiohttp import web

from adapters.kakao.deliver import PENDING_TTL, KakaoDeliverer, kakao_target
from adapters.kakao.handoff import Handoffs
from adapters.kakao.translate import (
    BadSkillRequest,
    SkillRequest,
    is_builder_test,
    parse_skill_request,
    to_callback_ack,
    to_inbound,
    to_skill_response,
    trusted_callback_url,
)
from adapters.metrics import METRICS
from adapters.middleware import REQUEST_ID, error_json
from adapters.runtime import ENGINE, SETTINGS
from adapters.settings import Settings
from adapters.worker import WORKER
from core.jobs import new_job
from core.messages import Lang, detect_language, say
from core.persona import SpeechLevel

__all__ = ["HANDOFFS", "SECRET_HEADER", "setup"]

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Dari-Skill-Secret"
HANDOFFS = web.AppKey("kakao_handoffs", Handoffs)


def setup(app: web.Application, settings: Settings) -> str:
    """Mount the skill routes and the door's deliverer; the status line says whether the door
    is protected."""
    handoffs = app[HANDOFFS] = Handoffs()
    app[WORKER].add("kakao", KakaoDeliverer(app, handoffs))
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


async def _write(request: web.Request, response: web.Response) -> bool:
    """Send ``response`` now: True once it is out, False when the connection is gone (the job
    then delivers the answer by callback or keeps it)."""
    if rid := request.get(REQUEST_ID):  # sent now: the middleware cannot add it afterwards
        response.headers["X-Request-Id"] = rid
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        log.warning("kakao answer not written: the connection closed")
        return False
    return True


def _authorized(request: web.Request, settings: Settings) -> bool:
    if settings.kakao_skill_secret is None:
        return True
    expected = settings.kakao_skill_secret.get_secret_value().encode()
    given = request.headers.get(SECRET_HEADER) or request.query.get("secret", "")
    # A header that is not UTF-8 arrives with surrogate escapes: compare its bytes as they came.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)


def _callback_url(payload: SkillRequest, settings: Settings) -> str | None:
    # Skill requests are unsigned: only POST answers back to Kakao's own HTTPS hosts, unless an
    # operator (or a test on loopback) explicitly allows any URL with "*".
    if settings.kakao_callback_domain == "*":
        return payload.userRequest.callbackUrl or None
    return trusted_callback_url(payload, allowed_domain=settings.kakao_callback_domain)


async def skill(request: web.Request) -> web.StreamResponse:
    received, received_at = time.monotonic(), time.time()
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

    # Kakao has no message ids and never redelivers: the id minted here is new by construction,
    # so the message needs no dedupe claim.
    inbound = to_inbound(payload, bot=bot, message_id=uuid.uuid4().hex)
    lang = detect_language(inbound.text, persona.language)
    level = persona.speech_level
    metrics = request.app[METRICS]
    store = engine.store
    worker = request.app[WORKER]
    handoffs = request.app[HANDOFFS]

    # Answers kept for this user are taken only in this message's turn (below, or by its job):
    # taken on arrival, they would come after answers to messages sent before this one.
    callback_url = None if is_builder_test(payload) else _callback_url(payload, settings)
    target = kakao_target(
        callback_url=callback_url,
        callback_until=received_at + settings.kakao_callback_window,
        first=[],
    )
    job = new_job(door="kakao", inbound=inbound, target=target, origin=worker.name)
    handoff = handoffs.open(job.id)
    try:
        # Without a callback the user waits on the line: in a Redis outage the job is not held
        # for the queue longer than a moment.
        await worker.submit(job, on_the_line=callback_url is None)
        # With a callback URL the user sees Kakao's waiting bubble at once instead of a silent
        # wait, so only a quick answer (a command, a short reply) is worth waiting for.
        limit = settings.kakao_callback_budget if callback_url else settings.kakao_budget
        text = await handoff.wait(max(limit - (time.monotonic() - received), 0.0))
        if text is not None:
            # The job's turn has come: every answer kept now is to an earlier message.
            late = await store.pop_pending(inbound.key)
            texts = [*_earlier(late, lang=lang, level=level), text]
            response = _json(
                to_skill_response(texts, quick_replies=persona.quick_replies, lang=lang, level=level)
            )
            written = await _write(request, response)
            handoff.written(written)
            if written:
                metrics.kakao_deliveries.labels("inline").inc()
            elif late:
                await store.put_pending(inbound.key, late, ttl=PENDING_TTL)  # the next message has it
            return response
    finally:
        handoffs.close(job.id)
    if callback_url:
        # The job POSTs the answer (after the kept ones, taken in its turn) to the callback URL.
        metrics.kakao_deliveries.labels("callback").inc()
        return _json(to_callback_ack(say("kakao_waiting", lang=lang, level=level)))
    # The job keeps the answer for the user's next message. What is kept now answers messages
    # before this one (its own job, still running, keeps its answer after them): give it now.
    metrics.kakao_deliveries.labels("pending").inc()
    earlier = await store.pop_pending(inbound.key)
    texts = [*_earlier(earlier, lang=lang, level=level), say("kakao_still_working", lang=lang, level=level)]
    return _json(to_skill_response(texts, quick_replies=(), lang=lang, level=level))


def _earlier(kept: str | None, *, lang: Lang, level: SpeechLevel) -> list[str]:
    """Kept answers to earlier messages, introduced, to go before this one's."""
    return [say("kakao_pending_intro", lang=lang, level=level) + "\n\n" + kept] if kept else []
