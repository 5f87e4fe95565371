"""The Kakao deliverer: an accepted skill request's answer, inline, by callback or kept for later.

The first attempt runs in the process whose skill request waits; it hands the answer over
when the request is still waiting (``Handoff``), marked just before the response is written.
Otherwise, and always after a takeover, the job delivers it: to the callback URL while it lives
(marked before the POST; a takeover POSTs to the same URL, which Kakao takes only once, so its
"invalid callback token" means the first POST got through), else as the pending answer given
first on the user's next message. A takeover that finds the inline mark sends nothing: either
the response reached the user, or the request failed and Kakao showed the user its error, as for
any request a dying process had not recorded (Kakao never sends a request again; the user does).
Answers kept earlier in the conversation go first in the next callback, so they arrive in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from adapters.kakao.callback import POST_MARGIN, CallbackDelivery, Outcome
from adapters.kakao.handoff import Handoffs
from adapters.kakao.translate import markdown_to_plain
from adapters.metrics import METRICS
from adapters.runtime import ENGINE, HTTP
from adapters.worker import Delivery
from core.engine import Engine
from core.errors import DariError
from core.memory.base import PENDING_SEPARATOR
from core.messages import Lang, detect_language, say
from core.persona import Persona
from core.types import Inbound

__all__ = ["PENDING_TTL", "KakaoDeliverer", "kakao_target"]

log = logging.getLogger(__name__)

PENDING_TTL = 24 * 3600.0


def kakao_target(*, callback_url: str | None, callback_until: float, first: list[str]) -> dict[str, Any]:
    """Where a job's answer goes besides the waiting request.

    Args:
        callback_url: the request's callback URL, if it may be used.
        callback_until: when that URL expires, in epoch seconds.
        first: an earlier answer to show before this one (the callback carries it).
    """
    return {"callback": callback_url or "", "callback_until": callback_until, "first": first}


async def full_answer(engine: Engine, inbound: Inbound, persona: Persona, lang: Lang) -> str:
    """The answer as Kakao shows it: plain text, an apology when the engine failed."""
    try:
        text = await engine.respond(inbound, accepted=True)
    except DariError as error:
        log.error("answer failed: %s", type(error).__name__, extra={"conversation": inbound.key.id})
        text = say("llm_failed", lang=lang, level=persona.speech_level)
    return markdown_to_plain(text)


class KakaoDeliverer:
    """Answers Kakao jobs; the app's engine, HTTP session and metrics are read when delivering."""

    def __init__(self, app: web.Application, handoffs: Handoffs) -> None:
        self._app = app
        self._handoffs = handoffs

    async def deliver(self, delivery: Delivery) -> None:
        engine = self._app[ENGINE]
        inbound = delivery.job.inbound
        persona = engine.persona(inbound.key.bot)
        lang = detect_language(inbound.text, persona.language)
        marks = delivery.marks
        if marks.get("callback") == "delivered" or marks.get("inline") == "sent" or "pending" in marks:
            return  # the first attempt delivered it (or its request failed) and died before it was done
        answer = asyncio.create_task(full_answer(engine, inbound, persona, lang))
        try:
            handoff = self._handoffs.get(delivery.job.id)

            async def writing() -> None:  # before the request writes it: a takeover sends nothing
                await delivery.mark("inline", "sent")

            if handoff is not None:
                if await handoff.offer(answer, before=writing):
                    return
                if "inline" in delivery.marks:  # marked, but the response did not go out
                    await delivery.mark("inline", "unsent")
            await self._later(delivery, answer, persona, lang)
        finally:
            if not answer.done():
                answer.cancel()
                await asyncio.gather(answer, return_exceptions=True)

    async def _later(
        self, delivery: Delivery, answer: asyncio.Task[str], persona: Persona, lang: Lang
    ) -> None:
        target = delivery.job.target
        url = str(target.get("callback") or "")
        until = float(target.get("callback_until") or 0.0)
        keep: str | None
        earlier = delivery.claim.marks  # what an attempt that died had done
        # A callback the attempt that died had begun is POSTed again to the same URL: Kakao takes
        # a URL once, so "invalid callback token" within its minute means the first POST got
        # through (with the answers it carried).
        again = earlier.get("callback") == "used"
        if url and ("callback" not in earlier or again) and time.time() < until - POST_MARGIN:

            async def used() -> None:  # before the POST
                await delivery.mark("callback", "used")

            callback = CallbackDelivery(
                http=self._app[HTTP], url=url, deadline=until, metrics=self._app[METRICS]
            )
            store = self._app[ENGINE].store
            fresh = await store.pop_pending(delivery.job.inbound.key) or ""
            kept = PENDING_SEPARATOR.join(text for text in (earlier.get("carried", ""), fresh) if text)
            if fresh:
                try:
                    await delivery.mark("carried", kept)  # taken from the store: a takeover must know
                except asyncio.CancelledError:
                    # Taken over meanwhile: the other process finds them where they were.
                    await store.put_pending(delivery.job.inbound.key, fresh, ttl=PENDING_TTL)
                    raise
            first = [str(text) for text in target.get("first") or ()]
            if kept:
                # Kept by an earlier message's takeover: it goes first, in order.
                intro = say("kakao_pending_intro", lang=lang, level=persona.speech_level)
                first.append(intro + "\n\n" + kept)
                log.info("kakao callback carries answers kept earlier", extra={"job": delivery.job.id})
            outcome = await callback.run(answer, first=first, persona=persona, lang=lang, before_post=used)
            if again and callback.used_before:
                # The first POST delivered the answer and what it carried; not what came since.
                outcome, kept = Outcome(keep=None, first_delivered=False), fresh
            keep = outcome.keep
            if kept and not outcome.first_delivered:  # not delivered either: kept again, in order
                keep = kept if keep is None else kept + PENDING_SEPARATOR + keep
            await delivery.mark("callback", "delivered")
        else:
            keep = await answer
        if keep is not None:
            log.info(
                "kakao answer kept for the user's next message",
                extra={"job": delivery.job.id, "attempt": delivery.claim.attempt},
            )
            # Marked first: a process that stalled past its lease learns here that the job is
            # another's, and stops instead of keeping the answer beside the one the takeover
            # keeps (the three-door soak showed such answers twice). Only a death in between
            # the mark and the write, a far rarer event, would lose it.
            await delivery.mark("pending", "kept")
            await self._app[ENGINE].store.put_pending(delivery.job.inbound.key, keep, ttl=PENDING_TTL)
