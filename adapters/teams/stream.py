"""Rendering an answer: streamed in 1:1 chats, one reply with a typing indicator in groups.

A 1:1 stream opens with an informative update, sends the full text so far at most once per
``interval`` (one request at a time, as Teams requires), and closes with the final message.
When Teams refuses the stream (a 4xx: streaming off for the client, stream stopped, too long),
the answer goes out as plain messages instead; a stream the user stopped gets nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.teams import activities
from adapters.teams.connector import ConnectorError
from adapters.teams.messages import say
from core.engine import Engine
from core.messages import detect_language
from core.types import Inbound

__all__ = ["Pacing", "Sender", "Stream", "answer_in_group", "answer_streaming"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pacing:
    """How fast the door talks to Teams.

    Attributes:
        stream_interval: the least time between two stream requests (Teams allows 1 per second).
        typing_interval: how often the typing indicator is renewed in groups while working.
        message_limit: the largest message, in UTF-16 bytes.
    """

    stream_interval: float = 1.0
    typing_interval: float = 3.0
    message_limit: int = activities.MESSAGE_LIMIT


class Sender(Protocol):
    async def send(self, body: Mapping[str, Any]) -> str: ...


class Stream:
    """One streamed answer in a 1:1 chat."""

    def __init__(
        self,
        outbox: Sender,
        *,
        pacing: Pacing,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._outbox = outbox
        self._pacing = pacing
        self._clock = clock
        self._sleep = sleep
        self._id = ""
        self._sequence = 0
        self._last = float("-inf")
        self._open = False
        self._stopped = False  # the user pressed Stop: say nothing more

    @property
    def streaming(self) -> bool:
        return self._open

    async def start(self, informative: str) -> None:
        """Open the stream with a progress line; on refusal, show a plain typing indicator."""
        try:
            self._id = await self._outbox.send(activities.stream_start(informative))
        except ConnectorError as error:
            log.info("streaming refused (%s): answering with one message", error.status)
        self._open, self._sequence, self._last = bool(self._id), 1, self._clock()
        if not self._open:
            await self._typing()

    async def update(self, text: str) -> None:
        """Show the answer so far, unless the last request was less than an interval ago."""
        if not self._open or self._clock() - self._last < self._pacing.stream_interval:
            return
        if activities.utf16_size(text) > self._pacing.message_limit:
            return  # the final message and the plain ones after it carry the rest
        self._sequence += 1
        try:
            update = activities.stream_update(text, stream_id=self._id, sequence=self._sequence)
            await self._outbox.send(update)
        except ConnectorError as error:
            self._close(error)
        self._last = self._clock()

    async def finish(self, text: str) -> None:
        """Close the stream with the whole answer (split when it is too long for one message)."""
        if self._stopped or not text.strip():
            return
        parts = activities.split_text(text, limit=self._pacing.message_limit)
        if self._open:
            if (wait := self._pacing.stream_interval - (self._clock() - self._last)) > 0:
                await self._sleep(wait)
            try:
                await self._outbox.send(activities.stream_final(parts[0], stream_id=self._id))
                parts = parts[1:]
            except ConnectorError as error:
                if _completed(error):
                    # An earlier attempt (a process that died, or lost its lease) closed this
                    # stream with the same answer: it is there already.
                    log.info("stream already finished by an earlier attempt")
                    parts = parts[1:]
                else:
                    self._close(error)
                    if self._stopped:
                        return
        for part in parts:
            await self._outbox.send(activities.answer(part))

    def _close(self, error: ConnectorError) -> None:
        self._open = False
        self._stopped = error.code == "ContentStreamNotAllowed" and "cancel" in error.detail.lower()
        log.info("stream closed (%s %s): the rest goes as plain messages", error.status, error.code)

    async def _typing(self) -> None:
        try:
            await self._outbox.send(activities.typing())
        except ConnectorError as error:
            log.info("typing indicator refused (%s)", error.status)


def _completed(error: ConnectorError) -> bool:
    """Teams' 403 for a stream that already got its final message."""
    return error.code == "ContentStreamNotAllowed" and "already completed" in error.detail.lower()


async def answer_streaming(*, engine: Engine, inbound: Inbound, outbox: Sender, pacing: Pacing) -> None:
    """Answer a 1:1 message as a stream."""
    persona = engine.persona(inbound.key.bot)
    lang = detect_language(inbound.text, persona.language)
    stream = Stream(outbox, pacing=pacing)
    await stream.start(say("preparing", lang=lang, level=persona.speech_level))
    text = ""
    async for delta in engine.stream(inbound, accepted=True):
        text += delta
        await stream.update(text)
    await stream.finish(text)


async def _keep_typing(outbox: Sender, done: asyncio.Event, interval: float) -> None:
    """Show the typing indicator at once (even for a quick answer) and renew it until ``done``."""
    while True:
        try:
            await outbox.send(activities.typing())
        except ConnectorError as error:
            log.info("typing indicator refused (%s)", error.status)
            return
        try:
            await asyncio.wait_for(done.wait(), timeout=interval)
            return
        except TimeoutError:
            continue


async def answer_in_group(*, engine: Engine, inbound: Inbound, outbox: Sender, pacing: Pacing) -> None:
    """Answer a mention in a channel thread or group chat: typing while working, then the reply."""
    done = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(_keep_typing(outbox, done, pacing.typing_interval))
        try:
            text = await engine.respond(inbound, accepted=True)
        finally:
            done.set()
    if text.strip():
        for part in activities.split_text(text, limit=pacing.message_limit):
            await outbox.send(activities.answer(part))
