"""The Slack door's work after the ack: decide, ask the engine, write the answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.runtime import TaskSet
from adapters.slack.client import FAILURES
from adapters.slack.messages import slack_say
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.names import DisplayNames
from adapters.slack.pacing import ChannelPacer
from adapters.slack.translate import (
    AssistantThread,
    SlackMessage,
    SlashCommand,
    command_word,
    thread_title,
    to_assistant_thread,
    to_command,
    to_inbound,
    to_slack_message,
)
from adapters.slack.writer import ReplyWriter, Target
from core.engine import Engine
from core.messages import detect_language, say
from core.persona import Persona
from core.types import ConversationKey, Inbound

__all__ = ["DoorOptions", "Responder"]

log = logging.getLogger(__name__)

SEEN_TTL = 3 * 86400.0  # longer than Slack's redelivery window, even with delayed events (24 h)
# Errors that mean "no streaming here at all", not "this stream failed".
_NO_STREAMING = frozenset({"unknown_method", "method_deprecated", "not_allowed_token_type", "missing_scope"})
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
    """Turns acknowledged Slack requests into background answers on the service's task set."""

    def __init__(
        self,
        *,
        engine: Engine,
        client: AsyncWebClient,
        tasks: TaskSet,
        options: DoorOptions,
    ) -> None:
        self._engine = engine
        self._client = client
        self._tasks = tasks
        self._options = options
        self._streaming = options.streaming
        self._names = DisplayNames(client=client)
        self._pacer = ChannelPacer(interval=options.write_interval)

    @property
    def _persona(self) -> Persona:
        return self._engine.persona(self._options.bot)

    def on_event(self, body: Mapping[str, Any], *, bot_user_id: str | None, bot_id: str | None) -> None:
        """Start the work an event asks for, if any. Returns at once (the ack is not held)."""
        if thread := to_assistant_thread(body):
            self._tasks.spawn(self._greet(thread), name=f"slack greet {thread.channel}")
        elif message := to_slack_message(body, bot_user_id=bot_user_id, bot_id=bot_id):
            self._tasks.spawn(self._answer(message), name=f"slack answer {message.channel}")

    def on_command(self, form: Mapping[str, Any]) -> None:
        if command := to_command(form):
            self._tasks.spawn(self._command(command), name=f"slack command {command.channel}")

    async def _first(self, token: str) -> bool:
        """True when ``token`` was not claimed before, here or in another process."""
        return await self._engine.store.claim(token, ttl=SEEN_TTL)

    def _token(self, tenant: str, *parts: str) -> str:
        return ":".join(("slack", self._options.bot, tenant, *parts))

    async def _answer(self, message: SlackMessage) -> None:
        if message.event_id and not await self._first(self._token(message.tenant, "event", message.event_id)):
            return  # a retry of a delivery we already took
        inbound = to_inbound(message, bot=self._options.bot)
        if message.kind == "follow_up" and not await self._takes_part(inbound.key):
            return
        if not await self._first(self._token(message.tenant, "message", message.channel, message.ts)):
            return  # the same message delivered as app_mention and as message.channels
        if not message.is_direct:
            name = await self._names.get(message.tenant, message.user)
            inbound = to_inbound(message, bot=self._options.bot, user_name=name)
        assistant = message.is_direct and bool(message.thread_ts)
        if assistant:
            await self._assistant_status(message)
        target = Target(message.channel, message.thread_ts, message.team, message.user)
        writer = await self._write(inbound, target)
        if assistant and not writer.wrote:  # nothing was posted, which would have cleared it
            await self._quietly(
                self._client.assistant_threads_setStatus(
                    channel_id=message.channel, thread_ts=message.thread_ts, status=""
                )
            )

    async def _takes_part(self, key: ConversationKey) -> bool:
        """A channel thread is followed once the bot has answered in it (and not been reset)."""
        if not self._options.thread_follow_ups:
            return False
        return bool(await self._engine.store.history(key, limit=1))

    async def _assistant_status(self, message: SlackMessage) -> None:
        persona = self._persona
        lang = detect_language(message.text, persona.language)
        status = slack_say("status_working", lang=lang, level=persona.speech_level)
        channel, thread_ts = message.channel, message.thread_ts
        await self._quietly(
            self._client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=status)
        )
        title = thread_title(message.text)
        if title and await self._first(self._token(message.tenant, "title", channel, thread_ts)):
            await self._quietly(
                self._client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title)
            )

    async def _write(self, inbound: Inbound, target: Target) -> ReplyWriter:
        writer = ReplyWriter(client=self._client, pacer=self._pacer, target=target, streaming=self._streaming)
        try:
            await self._render(inbound, writer)
            await writer.finish()
        except FAILURES as error:
            # Slack would not take the answer (the bot left the channel, Slack is down).
            log.warning("answer not delivered to Slack: %s", type(error).__name__, exc_info=error)
        if writer.refusal in _NO_STREAMING and self._streaming:
            log.warning(
                "Slack refused streaming (%s): answers are posted and edited from now on", writer.refusal
            )
            self._streaming = False
        return writer

    async def _render(self, inbound: Inbound, writer: ReplyWriter) -> None:
        persona = self._persona
        deltas = self._engine.stream(inbound)
        try:
            async for delta in deltas:
                await writer.add(delta)
        except FAILURES:
            raise
        except Exception:
            # Not an LLM failure (the engine apologises for those): a bug or a broken store.
            log.exception("answer failed", extra={"conversation": inbound.key.id})
            lang = detect_language(inbound.text, persona.language)
            if writer.empty:
                await writer.add(say("llm_failed", lang=lang, level=persona.speech_level))
            else:
                await writer.add("\n\n" + say("llm_failed_midway", lang=lang, level=persona.speech_level))
        finally:
            if isinstance(deltas, AsyncGenerator):  # release the conversation's turn at once
                await deltas.aclose()

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

    async def _command(self, command: SlashCommand) -> None:
        persona = self._persona
        word = command_word(command.text)
        if word == "초기화" and not command.is_direct:
            text = slack_say("reset_in_channel", lang="ko", level=persona.speech_level)
        else:
            key = ConversationKey("slack", command.tenant, command.channel, bot=self._options.bot)
            message_id = f"command:{command.trigger_id or command.channel}"
            inbound = Inbound(key=key, message_id=message_id, user_id=command.user, text=word)
            text = await self._engine.respond(inbound)
        if not text:
            return
        text = to_mrkdwn(text)
        try:
            await self._client.chat_postEphemeral(channel=command.channel, user=command.user, text=text)
        except FAILURES as error:
            # The bot may not be in that channel; the command's response_url reaches it anyway.
            if not command.response_url:
                log.warning("ephemeral answer failed: %s", type(error).__name__)
                return
            hook = AsyncWebhookClient(url=command.response_url, session=self._client.session)
            await self._quietly(hook.send(text=text, response_type="ephemeral"))

    async def _quietly(self, call: Awaitable[object]) -> None:
        """A call whose failure costs only decoration (status, title, prompts) and is logged."""
        try:
            await call
        except FAILURES as error:
            log.info("Slack call failed: %s", type(error).__name__)
