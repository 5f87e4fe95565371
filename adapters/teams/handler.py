"""``POST /api/messages``: validate, authenticate, dedupe, run the turn (a message is queued), answer in time.

Bad bodies get a JSON 4xx before the SDK sees them; a missing or invalid Bot Framework token
gets 401 (503 when the signing keys cannot be fetched). Teams redelivers activities it thinks
were slow, so each activity id is claimed once in the store and a redelivery is acknowledged
without a second answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web
from botbuilder.schema import Activity

from adapters.middleware import error_json
from adapters.runtime import ENGINE, HTTP, TASKS
from adapters.settings import Settings
from adapters.teams.adapter import TeamsAdapter
from adapters.teams.auth import (
    KEY_FETCH_TIMEOUT,
    PUBLIC_CLOUD,
    Authenticator,
    BotFrameworkCloud,
    CredentialTokens,
    Unauthorized,
    Unverifiable,
)
from adapters.teams.bot import TeamsBot, Turn
from adapters.teams.connector import Connector
from adapters.teams.deliver import TeamsDeliverer
from adapters.teams.feedback import FeedbackRecorder
from adapters.teams.stream import Pacing
from adapters.teams.translate import parse_activity, tenant_of
from adapters.worker import WORKER
from core.engine import DEDUPE_TTL
from core.errors import StoreError

__all__ = ["ROUTE", "TeamsEndpoint", "TeamsOptions"]

log = logging.getLogger(__name__)

ROUTE = "/api/messages"


@dataclass(frozen=True, slots=True)
class TeamsOptions:
    """Knobs of the door that are not user settings (tests and other clouds change them).

    Attributes:
        cloud: the Bot Framework endpoints to trust and call.
        credentials_factory: an SDK credentials factory replacing the one built from settings.
        pacing: stream and typing pace, message size limit.
        attempts: tries per outgoing activity (429, 412, 502, 504 are retried).
        backoff: the first retry backoff in seconds.
        key_timeout: how long token validation may wait for the signing keys.
    """

    cloud: BotFrameworkCloud = PUBLIC_CLOUD
    credentials_factory: Any = None
    pacing: Pacing = field(default_factory=Pacing)
    attempts: int = 5
    backoff: float = 0.5
    key_timeout: float = KEY_FETCH_TIMEOUT


class TeamsEndpoint:
    """The door's objects (authentication, connector, adapter, bot) and its one route."""

    def __init__(
        self, app: web.Application, settings: Settings, *, options: TeamsOptions, registry: Any = None
    ) -> None:
        self._deadline = settings.teams_reply_deadline
        self.auth = Authenticator(
            settings,
            cloud=options.cloud,
            credentials_factory=options.credentials_factory,
            key_timeout=options.key_timeout,
        )
        connector = Connector(
            session=lambda: app[HTTP],
            tokens=CredentialTokens(self.auth),
            attempts=options.attempts,
            backoff=options.backoff,
        )
        self.adapter = TeamsAdapter(self.auth.sdk, connector)
        deliverer = TeamsDeliverer(
            app, adapter=self.adapter, app_id=settings.microsoft_app_id, pacing=options.pacing
        )
        app[WORKER].add("teams", deliverer)
        self.bot = TeamsBot(
            adapter=self.adapter,
            app_id=settings.microsoft_app_id,
            pacing=options.pacing,
            feedback=FeedbackRecorder(registry),
            bot=settings.teams_bot,
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline
        if request.content_type != "application/json":
            return error_json(415, "the body must be application/json")
        try:
            body = json.loads(await request.read())
            activity = parse_activity(body)
            sdk_activity = Activity().deserialize(body)
        except (ValueError, RecursionError) as error:  # bad JSON, MalformedActivity, msrest's errors
            return error_json(400, f"not a Bot Framework activity: {error}"[:300])
        try:
            authenticated = await self.auth.authenticate(sdk_activity, request.headers.get("Authorization"))
        except Unauthorized as error:
            log.warning("teams request rejected: %s", error)
            return error_json(401, "a valid Bot Framework token is required")
        except Unverifiable as error:
            log.error("teams signing keys unavailable: %s", error)
            return error_json(503, "cannot verify the token right now")
        engine = request.app[ENGINE]
        # A message is claimed together with its job (TeamsBot): a claim on its own, then a
        # crash before the job was recorded, would make Teams' redelivery look answered.
        if activity.type != "message":
            try:
                # Activity ids are unique within a conversation (message ids are timestamps).
                delivery = f"teams:activity:{tenant_of(activity)}:{activity.conversation.id}:{activity.id}"
                if activity.id and not await engine.store.claim(delivery, ttl=DEDUPE_TTL):
                    log.info("redelivered activity acknowledged", extra={"activity": activity.id})
                    return web.Response(status=200)
            except StoreError:
                log.exception("store unavailable")
                return error_json(503, "the store is unavailable")
        turn = Turn(
            activity=activity,
            engine=engine,
            tasks=request.app[TASKS],
            worker=request.app[WORKER],
            deadline=deadline,
        )
        try:
            invoke = await self.adapter.process_activity(
                authenticated, sdk_activity, partial(self.bot.run, turn=turn)
            )
        except StoreError:
            log.exception("store unavailable")
            return error_json(503, "the store is unavailable")
        if invoke is None:
            return web.Response(status=200)
        status = int(invoke.status)
        if status >= 400:
            return error_json(status, str(invoke.body or "the invoke was not handled"))
        if invoke.body is None:
            return web.Response(status=status)
        return web.json_response(invoke.body, status=status)
