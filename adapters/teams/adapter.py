"""The CloudAdapter, with its one outbound hook sending through our connector, and the Outbox.

``send_activities`` is the hook every ``TurnContext.send_activity`` ends in, inbound turn or
proactive; overriding it sends each activity through ``Connector`` (Teams' retry rules) while
the SDK keeps addressing, invoke responses and the turn pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, ResourceResponse

from adapters.teams.connector import Connector

__all__ = ["Outbox", "TeamsAdapter"]

log = logging.getLogger(__name__)


def _entity_json(entity: Any) -> dict[str, Any]:
    # msrest drops an Entity's extra properties when serializing; Teams needs them
    # (streaminfo's streamId/streamType/streamSequence, the AI label's additionalType).
    extra = getattr(entity, "additional_properties", None) or {}
    return {**dict(entity.serialize()), **extra}


def _activity_json(activity: Any) -> dict[str, Any]:
    body: dict[str, Any] = dict(activity.serialize())
    if activity.entities:
        body["entities"] = [_entity_json(entity) for entity in activity.entities]
    body.pop("id", None)
    return body


class TeamsAdapter(CloudAdapter):  # type: ignore[misc]  # the SDK is untyped
    """A ``CloudAdapter`` whose outgoing activities go through ``Connector``."""

    def __init__(self, authentication: Any, connector: Connector) -> None:
        super().__init__(authentication)
        self._connector = connector

    async def send_activities(self, context: Any, activities: list[Any]) -> list[Any]:
        responses: list[Any] = []
        for activity in activities:
            if activity.type == ActivityTypes.invoke_response:
                # Kept for the HTTP response of the invoke, as the SDK's own adapter does.
                context.turn_state[self._INVOKE_RESPONSE_KEY] = activity
                responses.append(ResourceResponse(id=""))
                continue
            if activity.type == ActivityTypes.trace:
                responses.append(ResourceResponse(id=""))
                continue
            sent = await self._connector.send(
                activity.service_url,
                activity.conversation.id,
                _activity_json(activity),
                reply_to=activity.reply_to_id or "",
            )
            responses.append(ResourceResponse(id=sent))
        return responses


class Outbox:
    """Where one turn's replies go.

    While the inbound HTTP request is open, replies go through its ``TurnContext``. Once the
    request has been answered (the reply deadline passed), ``detach`` switches the rest to the
    proactive path: ``adapter.continue_conversation`` with the stored conversation reference.
    Either way a reply is addressed to the message that asked (``replyToId``).
    """

    def __init__(self, *, adapter: TeamsAdapter, context: Any, app_id: str) -> None:
        self._adapter = adapter
        self._context: Any = context
        self._reference: Any = TurnContext.get_conversation_reference(context.activity)
        self._app_id = app_id
        self.proactive = False

    def detach(self) -> None:
        """The HTTP request is answered: send everything after this proactively."""
        self._context = None
        self.proactive = True

    async def send(self, body: Mapping[str, Any]) -> str:
        """Send one activity (plain JSON); returns the id the connector gave it."""
        activity = Activity().deserialize(dict(body))
        if self._context is not None:
            response = await self._context.send_activity(activity)
            return str(response.id or "") if response is not None else ""
        sent: list[str] = []

        async def send_proactively(context: Any) -> None:
            # The continuation activity has a fresh id; answer the original message instead.
            context.activity.id = self._reference.activity_id
            response = await context.send_activity(activity)
            sent.append(str(response.id or "") if response is not None else "")

        await self._adapter.continue_conversation(self._reference, send_proactively, bot_app_id=self._app_id)
        return sent[0] if sent else ""
