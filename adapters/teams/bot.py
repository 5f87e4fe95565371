"""The ActivityHandler: messages, installs and feedback, each held to the reply deadline.

A message becomes a job, recorded before the HTTP response goes, and is answered proactively
by ``deliver.py`` (in any process). A welcome runs as a background task; the turn waits for
it until the deadline and then lets the HTTP response go, and the rest of it goes out
proactively through its ``Outbox``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from botbuilder.core import ActivityHandler
from botbuilder.schema import InvokeResponse

from adapters.runtime import TaskSet
from adapters.teams import activities
from adapters.teams.adapter import Outbox, TeamsAdapter
from adapters.teams.deliver import teams_target
from adapters.teams.feedback import FeedbackRecorder
from adapters.teams.messages import welcome
from adapters.teams.stream import Pacing
from adapters.teams.translate import (
    TeamsActivity,
    bot_was_added,
    conversation_key,
    conversation_kind,
    mentions_bot,
    to_feedback,
    to_inbound,
)
from adapters.worker import Worker
from core.engine import Engine
from core.jobs import new_job

__all__ = ["FEEDBACK_INVOKE", "TeamsBot", "Turn"]

log = logging.getLogger(__name__)

FEEDBACK_INVOKE = "message/submitAction"
WELCOME_TTL = 86400.0  # one welcome per conversation and day, whatever Teams resends
_TURN = "dari.teams.turn"


@dataclass(frozen=True, slots=True)
class Turn:
    """What the HTTP handler hands to one turn.

    Attributes:
        activity: the validated activity.
        engine: the engine (read from the app at request time).
        tasks: where background replies run.
        worker: where messages go to be answered.
        deadline: the event-loop time by which the HTTP response must leave.
    """

    activity: TeamsActivity
    engine: Engine
    tasks: TaskSet
    worker: Worker
    deadline: float


def _turn(context: Any) -> Turn:
    turn = context.turn_state[_TURN]
    assert isinstance(turn, Turn)
    return turn


async def _send(outbox: Outbox, body: dict[str, Any]) -> None:
    await outbox.send(body)


class TeamsBot(ActivityHandler):  # type: ignore[misc]  # the SDK is untyped
    """Answers messages (1:1 always, groups when mentioned), welcomes installs, records feedback."""

    def __init__(
        self,
        *,
        adapter: TeamsAdapter,
        app_id: str,
        pacing: Pacing,
        feedback: FeedbackRecorder,
        bot: str = "default",
    ) -> None:
        self._bot = bot
        self._adapter = adapter
        self._app_id = app_id
        self._pacing = pacing
        self._feedback = feedback

    async def run(self, context: Any, turn: Turn) -> None:
        """The adapter's turn callback: attach our turn, then dispatch by activity type."""
        context.turn_state[_TURN] = turn
        await self.on_turn(context)

    async def on_message_activity(self, turn_context: Any) -> None:
        turn = _turn(turn_context)
        activity = turn.activity
        direct = conversation_kind(activity) == "personal"
        if not direct and not mentions_bot(activity):
            return  # with extra permissions Teams may deliver unaddressed group messages
        inbound = to_inbound(activity, bot=self._bot)
        # Claimed and recorded together before the HTTP response goes; the answer is sent
        # proactively (deliver.py).
        target = teams_target(turn_context, direct=direct)
        job = new_job(door="teams", inbound=inbound, target=target, origin=turn.worker.name)
        if not await turn.worker.submit(job, seen=turn.engine.seen(inbound)):
            turn.engine.dropped(inbound)

    async def on_members_added_activity(self, members_added: list[Any], turn_context: Any) -> None:
        turn = _turn(turn_context)
        activity = turn.activity
        if not bot_was_added(activity):
            return  # other people joining get no message from the bot
        key = conversation_key(activity, bot=self._bot)
        if not await turn.engine.store.claim(f"teams:welcome:{key.id}", ttl=WELCOME_TTL):
            return
        persona = turn.engine.persona(key.bot)
        text = welcome(persona, group=conversation_kind(activity) != "personal")
        outbox = self._outbox(turn_context)
        await self._hold(turn, outbox, _send(outbox, activities.answer(text, feedback=False)), name="welcome")

    async def on_invoke_activity(self, turn_context: Any) -> Any:
        turn = _turn(turn_context)
        if turn.activity.name != FEEDBACK_INVOKE:
            response = await super().on_invoke_activity(turn_context)
            if response is not None and int(response.status) == HTTPStatus.NOT_IMPLEMENTED:
                # An invoke this bot does not handle is the sender's mistake, not a server error.
                return InvokeResponse(status=HTTPStatus.BAD_REQUEST, body="not an invoke this bot handles")
            return response
        feedback = to_feedback(turn.activity, bot=self._bot)
        if feedback is None:
            return InvokeResponse(status=HTTPStatus.BAD_REQUEST, body="not a feedback action")
        self._feedback.record(feedback)
        return InvokeResponse(status=HTTPStatus.OK)

    def _outbox(self, turn_context: Any) -> Outbox:
        return Outbox(adapter=self._adapter, context=turn_context, app_id=self._app_id)

    async def _hold(self, turn: Turn, outbox: Outbox, work: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run ``work`` in the background; wait for it until the deadline, then detach."""
        task = turn.tasks.spawn(work, name=name)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait({task}, timeout=max(0.0, turn.deadline - loop.time()))
        finally:
            if not task.done():
                outbox.detach()
                log.info("reply continues after the HTTP response", extra={"task": name})
