"""The Teams deliverer: a queued message answered proactively, from any process.

The job carries the conversation reference of the message, so any process can continue that
conversation. What reached Teams is marked as it goes: the stream's id (a takeover closes that
stream with its final message instead of opening another) and how many answer messages were
sent (a takeover does not send them again).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.schema import ConversationReference

from adapters.runtime import ENGINE
from adapters.teams.adapter import Outbox, TeamsAdapter
from adapters.teams.connector import ConnectorError
from adapters.teams.stream import Pacing, Sender, answer_in_group, answer_streaming
from adapters.worker import Delivery

__all__ = ["MarkedSender", "TeamsDeliverer", "teams_target"]

log = logging.getLogger(__name__)

_STREAM_MARK = "teams:stream"
_PARTS_MARK = "teams:parts"


def teams_target(context: Any, *, direct: bool) -> dict[str, Any]:
    """Where the answer to the turn's message goes: its conversation reference, as JSON."""
    reference = TurnContext.get_conversation_reference(context.activity)
    return {"reference": reference.serialize(), "direct": direct}


def _stream_kind(body: Mapping[str, Any]) -> str:
    for entity in body.get("entities") or ():
        if isinstance(entity, Mapping) and entity.get("type") == "streaminfo":
            return str(entity.get("streamType", ""))
    return ""


class MarkedSender:
    """Sends through the outbox, marking what reached Teams and skipping what already had."""

    def __init__(self, outbox: Sender, delivery: Delivery) -> None:
        self._outbox = outbox
        self._delivery = delivery
        self._stream = delivery.marks.get(_STREAM_MARK, "")
        self._parts = int(delivery.marks.get(_PARTS_MARK, "0"))
        self._resumed = bool(self._stream or self._parts)
        self._sent = 0

    async def send(self, body: Mapping[str, Any]) -> str:
        kind = _stream_kind(body)
        if body.get("type") == "message":
            self._sent += 1
            if self._sent <= self._parts:
                return ""  # sent by the attempt that died
            sent = await self._outbox.send(body)
            await self._delivery.mark(_PARTS_MARK, str(self._sent))
            return sent
        if kind == "informative":
            if self._stream:
                return self._stream  # the open stream of the earlier attempt: finish that one
            sent = await self._outbox.send(body)
            if sent:
                await self._delivery.mark(_STREAM_MARK, sent)
            return sent
        if kind == "streaming" and self._resumed:
            return ""  # its sequence numbers would clash with the earlier attempt's
        return await self._outbox.send(body)


class TeamsDeliverer:
    """Answers Teams jobs: streamed in 1:1 chats, one reply in groups."""

    def __init__(self, app: web.Application, *, adapter: TeamsAdapter, app_id: str, pacing: Pacing) -> None:
        self._app = app
        self._adapter = adapter
        self._app_id = app_id
        self._pacing = pacing

    async def deliver(self, delivery: Delivery) -> None:
        target = delivery.job.target
        reference = ConversationReference().deserialize(dict(target["reference"]))
        render = answer_streaming if target.get("direct") else answer_in_group
        engine = self._app[ENGINE]

        async def turn(context: Any) -> None:
            # The continuation activity has a fresh id; answer the original message instead.
            context.activity.id = reference.activity_id
            outbox = Outbox(adapter=self._adapter, context=context, app_id=self._app_id)
            marked = MarkedSender(outbox, delivery)
            await render(engine=engine, inbound=delivery.job.inbound, outbox=marked, pacing=self._pacing)

        try:
            await self._adapter.continue_conversation(reference, turn, bot_app_id=self._app_id)
        except ConnectorError as error:
            # Teams would not take the answer (the bot was removed, Teams is down).
            log.warning("answer not delivered to Teams: %s", type(error).__name__, exc_info=error)
