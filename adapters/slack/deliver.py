"""The Slack deliverer: a queued message or slash command answered in Slack, from any process.

Each message the answer is written into is marked with its ts as soon as Slack gives it; an
attempt after a takeover edits those messages instead of posting new ones, so the thread still
shows one answer. A process can die between Slack creating a message and the mark, so the
first attempt also marks that it started writing: a takeover that finds that mark looks in the
thread for the bot's messages after the question and edits those too. A slash command's
ephemeral answer is marked once sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.answer import DoorOptions
from adapters.slack.client import FAILURES
from adapters.slack.jobs import command_inbound, from_command_target, from_message_target
from adapters.slack.messages import slack_say
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.names import DisplayNames
from adapters.slack.pacing import ChannelPacer
from adapters.slack.translate import SlackMessage, SlashCommand, thread_title, to_inbound
from adapters.slack.writer import ReplyWriter, Target
from adapters.worker import Delivery
from core.engine import Engine
from core.messages import detect_language, say
from core.types import Inbound

__all__ = ["SlackDeliverer"]

log = logging.getLogger(__name__)

SEEN_TTL = 3 * 86400.0
# Errors that mean "no streaming here at all", not "this stream failed".
_NO_STREAMING = frozenset({"unknown_method", "method_deprecated", "not_allowed_token_type", "missing_scope"})
_MESSAGE_MARK = "slack:message:"  # + the message's number in the answer -> its ts
# When the answer started, on this host's clock, set before its first message is created: Slack
# stamps that message later, and the answers before it (done before this job started) earlier.
_STARTED_MARK = "slack:started"
_EPHEMERAL_MARK = "slack:ephemeral"


def _stamp(message: dict[str, object]) -> float:
    try:
        return float(str(message.get("ts", "")))
    except ValueError:
        return 0.0


class SlackDeliverer:
    """Writes answers into Slack: threads, DMs, the assistant panel, ephemeral command answers."""

    def __init__(
        self, *, engine: Engine, client: AsyncWebClient, pacer: ChannelPacer, options: DoorOptions
    ) -> None:
        self._engine = engine
        self._client = client
        self._pacer = pacer
        self._options = options
        self._streaming = options.streaming
        self._names = DisplayNames(client=client)
        self._user_id: str | None = None  # the bot's own user id, asked once

    async def deliver(self, delivery: Delivery) -> None:
        target = delivery.job.target
        if target.get("kind") == "command":
            await self._command(from_command_target(target), delivery)
        else:
            await self._message(from_message_target(target, text=delivery.job.inbound.text), delivery)

    async def _message(self, message: SlackMessage, delivery: Delivery) -> None:
        inbound = delivery.job.inbound
        if not message.is_direct:
            name = await self._names.get(message.tenant, message.user)
            inbound = to_inbound(message, bot=self._options.bot, user_name=name)
        assistant = message.is_direct and bool(message.thread_ts)
        if assistant:
            await self._assistant_status(message)
        target = Target(message.channel, message.thread_ts, message.team, message.user)
        writer = await self._write(inbound, target, delivery, after=message.ts)
        if assistant and not writer.wrote:  # nothing was posted, which would have cleared it
            await self._quietly(
                self._client.assistant_threads_setStatus(
                    channel_id=message.channel, thread_ts=message.thread_ts, status=""
                )
            )

    async def _assistant_status(self, message: SlackMessage) -> None:
        persona = self._engine.persona(self._options.bot)
        lang = detect_language(message.text, persona.language)
        status = slack_say("status_working", lang=lang, level=persona.speech_level)
        channel, thread_ts = message.channel, message.thread_ts
        await self._quietly(
            self._client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=status)
        )
        title = thread_title(message.text)
        token = ":".join(("slack", self._options.bot, message.tenant, "title", channel, thread_ts))
        if title and await self._engine.store.claim(token, ttl=SEEN_TTL):
            await self._quietly(
                self._client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=title)
            )

    async def _write(
        self, inbound: Inbound, target: Target, delivery: Delivery, *, after: str
    ) -> ReplyWriter:
        posted = sorted(
            (int(name.removeprefix(_MESSAGE_MARK)), ts)
            for name, ts in delivery.marks.items()
            if name.startswith(_MESSAGE_MARK)
        )
        resume = [ts for _, ts in posted]
        if started := delivery.marks.get(_STARTED_MARK):
            # The earlier attempt may have created messages it did not live to mark.
            since = max(float(after or 0), float(started))
            resume += [ts for ts in await self._bot_messages(target, since=since) if ts not in resume]
        else:
            await delivery.mark(_STARTED_MARK, f"{time.time():.6f}")

        async def record(index: int, ts: str) -> None:
            await delivery.mark(f"{_MESSAGE_MARK}{index}", ts)

        writer = ReplyWriter(
            client=self._client,
            pacer=self._pacer,
            target=target,
            streaming=self._streaming,
            resume=resume,
            on_message=record,
        )
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

    async def _bot_messages(self, target: Target, *, since: float) -> list[str]:
        """The ts of this bot's messages stamped after ``since`` where ``target`` is answered,
        oldest first."""
        after = f"{since:.6f}"
        try:
            me = await self._me()
            if target.thread_ts:
                page = await self._client.conversations_replies(
                    channel=target.channel, ts=target.thread_ts, oldest=after, limit=50
                )
            else:
                page = await self._client.conversations_history(
                    channel=target.channel, oldest=after, limit=50
                )
        except FAILURES as error:
            log.warning("could not look for an earlier attempt's messages: %s", type(error).__name__)
            return []
        found = [
            message
            for message in page.get("messages") or []
            if isinstance(message, dict) and message.get("user") == me and _stamp(message) > since
        ]
        return sorted(str(message["ts"]) for message in found)

    async def _me(self) -> str:
        if self._user_id is None:
            self._user_id = str((await self._client.auth_test()).get("user_id") or "")
        return self._user_id

    async def _render(self, inbound: Inbound, writer: ReplyWriter) -> None:
        persona = self._engine.persona(self._options.bot)
        deltas = self._engine.stream(inbound, accepted=True)
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

    async def _command(self, command: SlashCommand, delivery: Delivery) -> None:
        if _EPHEMERAL_MARK in delivery.marks:
            return  # answered by the attempt that died before saying so
        persona = self._engine.persona(self._options.bot)
        if command.text == "초기화" and not command.is_direct:
            text = slack_say("reset_in_channel", lang="ko", level=persona.speech_level)
        else:
            inbound = command_inbound(command, bot=self._options.bot)
            text = await self._engine.respond(inbound, accepted=True)
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
        await delivery.mark(_EPHEMERAL_MARK, "sent")

    async def _quietly(self, call: Awaitable[object]) -> None:
        """A call whose failure costs only decoration (status, title, prompts) and is logged."""
        try:
            await call
        except FAILURES as error:
            log.info("Slack call failed: %s", type(error).__name__)
