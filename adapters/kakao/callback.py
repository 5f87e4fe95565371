"""Delivering an answer to Kakao's callback URL: one minute, one use, never twice."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp

from adapters.kakao.translate import to_skill_response
from adapters.metrics import Metrics
from core.messages import Lang, say
from core.persona import Persona

__all__ = ["POST_MARGIN", "CallbackDelivery", "Outcome"]

log = logging.getLogger(__name__)

# Leave room for the POST itself before the URL expires.
POST_MARGIN = 5.0


def _json_or_none(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a callback did not deliver.

    Attributes:
        keep: the answer, to give with the user's next message; None when it was delivered.
        first_delivered: whether the texts sent before the answer reached the user.
    """

    keep: str | None
    first_delivered: bool


class CallbackDelivery:
    """POSTs one SkillResponse to a callback URL, retrying only failures that cannot have delivered.

    Args:
        deadline: when the URL expires, in epoch seconds (any process may deliver).
    """

    def __init__(self, *, http: aiohttp.ClientSession, url: str, deadline: float, metrics: Metrics) -> None:
        self._http = http
        self._url = url
        self._deadline = deadline
        self._metrics = metrics
        self.used_before = False  # Kakao refused the POST as one to a URL already used

    async def run(
        self,
        answer: asyncio.Task[str],
        *,
        first: Sequence[str],
        persona: Persona,
        lang: Lang,
        before_post: Callable[[], Awaitable[None]] | None = None,
    ) -> Outcome:
        """Wait for the answer and POST it (after ``first``); what was not delivered: the answer,
        when the URL expires before it is ready or the POST did not deliver it (Kakao refused it,
        the window closed), and whether ``first`` went out.

        ``before_post`` runs right before the one POST (with its retries): the URL is used from then on.
        """
        level = persona.speech_level
        wait = self._deadline - POST_MARGIN - time.time()
        try:
            text = await asyncio.wait_for(asyncio.shield(answer), timeout=max(wait, 0.0))
        except TimeoutError:
            # The URL will expire before the answer is ready: say so now, keep the answer.
            body = to_skill_response(
                [*first, say("kakao_too_long", lang=lang, level=level)], lang=lang, level=level
            )
            if before_post is not None:
                await before_post()
            sent = await self.post(body)
            return Outcome(keep=await answer, first_delivered=sent)
        body = to_skill_response([*first, text], quick_replies=persona.quick_replies, lang=lang, level=level)
        if before_post is not None:
            await before_post()
        # Refused (say, the request had failed, so Kakao never waited for a callback): the user
        # gets it with their next message rather than never.
        sent = await self.post(body)
        return Outcome(keep=None if sent else text, first_delivered=sent)

    async def post(self, body: dict[str, object]) -> bool:
        """POST once; retry only when no answer came back (connection failure) or Kakao said 5xx/429."""
        delay = 0.5
        while True:
            remaining = self._deadline - time.time()
            if remaining <= 0:
                self._metrics.kakao_callbacks.labels("expired").inc()
                log.error("kakao callback window closed before delivery")
                return False
            try:
                timeout = aiohttp.ClientTimeout(total=min(10.0, remaining))
                async with self._http.post(self._url, json=body, timeout=timeout) as response:
                    status = response.status
                    raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                log.warning("kakao callback attempt failed: %s", type(error).__name__)
            else:
                if status < 500 and status != 429:
                    return self._settle(status, _json_or_none(raw))
                log.warning("kakao callback answered %s, retrying", status)
            await asyncio.sleep(min(delay, max(self._deadline - time.time(), 0.0)))
            delay = min(delay * 2, 4.0)

    def _settle(self, status: int, result: object) -> bool:
        kakao_status = result.get("status") if isinstance(result, dict) else None
        if status == 200 and kakao_status in (None, "SUCCESS"):
            self._metrics.kakao_callbacks.labels("delivered").inc()
            return True
        # Kakao refused (expired or used token, bad JSON): a second POST cannot help.
        message = result.get("message") if isinstance(result, dict) else None
        # Within the URL's minute, an invalid token is one already used.
        self.used_before = "invalid callback token" in str(message).lower() and time.time() < self._deadline
        log.error(
            "kakao callback refused",
            extra={"status": status, "kakao_status": str(kakao_status), "kakao_message": str(message)[:200]},
        )
        self._metrics.kakao_callbacks.labels("refused").inc()
        return False
