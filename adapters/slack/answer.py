"""What the Slack door does before the ack: decide, dedupe, record the job (``deliver.py`` answers it)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.runtime import TaskSet
from adapters.slack.client import FAILURES
from adapters.slack.jobs import command_inbound, to_command_target, to_message_target
from adapters.slack.messages import slack_say
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.pacing import ChannelPacer
from adapters.slack.translate import (
    AssistantThread,
    SlackMessage,
    to_assistant_thread,
    to_command,
    to_inbound,
    to_slack_message,
)
from adapters.worker import Worker
from core.engine import Engine
from core.jobs import new_job
from core.persona import Persona
from core.types import ConversationKey, Inbound

__all__ = ["DoorOptions", "Responder"]

log = logging.getLogger(__name__)

SEEN_TTL = 3 * 86400.0  # longer than Slack's redelivery window, even with delayed events (24 h)
_MAX_PROMPTS = 4  # Slack shows at most four suggested prompts


@dataclass(frozen=True, slots=True)
class DoorOptions:
    """How the Slack door behaves.

    Attributes:
        bot: the bot file (``bots/<bot>.toml``) that answers in Slack.
        thread_follow_ups: answer replies in a channel thread the bot already answered in,
            without a new mention.
        streaming: stream answers into threads (chat.startStream); off means post and edit.
        write_interval: seconds between two writes to one channel (Slack allows about one).
    """

    bot: str = "default"
    thread_follow_ups: bool = True
    streaming: bool = True
    write_interval: float = 1.0


class Responder:
    """Turns verified Slack requests into recorded jobs, before Slack is acknowledged.

    Greetings of new assistant threads are not messages: they run on the task set.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        client: AsyncWebClient,
        tasks: TaskSet,
        worker: Worker,
        pacer: ChannelPacer,
        options: DoorOptions,
    ) -> None:
        self._engine = engine
        self._client = client
        self._tasks = tasks
        self._worker = worker
        self._pacer = pacer
        self._options = options

    @property
    def _persona(self) -> Persona:
        return self._engine.persona(self._options.bot)

    async def on_event(self, body: Mapping[str, Any], *, bot_user_id: str | None, bot_id: str | None) -> None:
        """Record the work an event asks for, if any (the answer itself comes later)."""
        if thread := to_assistant_thread(body):
            self._tasks.spawn(self._greet(thread), name=f"slack greet {thread.channel}")
        elif message := to_slack_message(body, bot_user_id=bot_user_id, bot_id=bot_id):
            await self._accept(message)

    async def on_command(self, form: Mapping[str, Any]) -> None:
        if not (command := to_command(form)):
            return
        inbound = command_inbound(command, bot=self._options.bot)
        if not await self._submit(inbound, to_command_target(command), seen=self._engine.seen(inbound)):
            self._engine.dropped(inbound)

    async def _first(self, token: str) -> bool:
        """True when ``token`` was not claimed before, here or in another process."""
        return await self._engine.store.claim(token, ttl=SEEN_TTL)

    def _token(self, tenant: str, *parts: str) -> str:
        return ":".join(("slack", self._options.bot, tenant, *parts))

    async def _accept(self, message: SlackMessage) -> None:
        inbound = to_inbound(message, bot=self._options.bot)
        if message.kind == "follow_up" and not await self._takes_part(inbound.key):
            return
        # Claimed with the job, in one step: a retry of a delivery we already took, or the same
        # message delivered as app_mention and as message.channels, is dropped.
        seen = {self._token(message.tenant, "message", message.channel, message.ts): SEEN_TTL}
        if message.event_id:
            seen[self._token(message.tenant, "event", message.event_id)] = SEEN_TTL
        if not await self._submit(inbound, to_message_target(message), seen=seen):
            log.info("Slack redelivery dropped", extra={"conversation": inbound.key.id})

    async def _submit(self, inbound: Inbound, target: dict[str, Any], *, seen: Mapping[str, float]) -> bool:
        job = new_job(door="slack", inbound=inbound, target=target, origin=self._worker.name)
        return await self._worker.submit(job, seen=seen)

    async def _takes_part(self, key: ConversationKey) -> bool:
        """A channel thread is followed once the bot has answered in it (and not been reset)."""
        if not self._options.thread_follow_ups:
            return False
        return bool(await self._engine.store.history(key, limit=1))

    async def _greet(self, thread: AssistantThread) -> None:
        if not await self._first(self._token(thread.tenant, "started", thread.channel, thread.thread_ts)):
            return
        persona = self._persona
        channel, thread_ts = thread.channel, thread.thread_ts
        await self._pacer.wait(channel)
        await self._quietly(
            self._client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=to_mrkdwn(persona.greeting)
            )
        )
        prompts = [{"title": q, "message": q} for q in persona.quick_replies[:_MAX_PROMPTS]]
        if prompts:
            title = slack_say("prompts_title", lang=persona.language, level=persona.speech_level)
            await self._quietly(
                self._client.assistant_threads_setSuggestedPrompts(
                    channel_id=channel, thread_ts=thread_ts, prompts=prompts, title=title
                )
            )

    async def _quietly(self, call: Awaitable[object]) -> None:
        """A call whose failure costs only decoration (a greeting, prompts) and is logged."""
        try:
            await call
        except FAILURES as error:
            log.info("Slack call failed: %s", type(error).__name__)
