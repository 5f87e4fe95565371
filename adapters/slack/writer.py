"""One answer on its way into Slack: streamed in place, or posted and edited, split when long."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.client import FAILURES
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.pacing import ChannelPacer
from adapters.slack.split import split_once

__all__ = ["POST_LIMIT", "STREAM_LIMIT", "ReplyWriter", "Target"]

log = logging.getLogger(__name__)

# Markdown characters per message. chat.postMessage text should stay under 4,000 (mrkdwn
# escapes add a little); chat.appendStream takes at most 12,000 at a time.
POST_LIMIT = 3500
STREAM_LIMIT = 10000


@dataclass(frozen=True, slots=True)
class Target:
    """Where an answer goes: a channel, the thread in it ("" for the channel itself) and the asker."""

    channel: str
    thread_ts: str
    team: str
    user: str


def _reason(error: Exception) -> str:
    if isinstance(error, SlackApiError) and isinstance(error.response.data, dict):
        return str(error.response.data.get("error", "unknown"))
    return type(error).__name__


class ReplyWriter:
    """Writes one answer as it grows.

    With streaming (threads only) the text is appended through chat.startStream /
    appendStream / stopStream; when Slack refuses that, or without streaming, the first
    text is posted and then edited with chat.update. Either way Slack is written at most
    once per pacer interval per channel, and an answer longer than a message continues in
    the next message of the thread, cut between paragraphs.

    ``on_message`` hears the ts of each message as soon as Slack gives it; a writer given
    those ts as ``resume`` (an answer written again after its process died) edits those
    messages instead of posting new ones, so the thread still shows one answer.

    Attributes:
        wrote: something reached Slack.
        refusal: the error with which Slack refused streaming, or "".
    """

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        pacer: ChannelPacer,
        target: Target,
        streaming: bool,
        post_limit: int = POST_LIMIT,
        stream_limit: int = STREAM_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        resume: Sequence[str] = (),
        on_message: Callable[[int, str], Awaitable[None]] | None = None,
    ) -> None:
        self._client = client
        self._pacer = pacer
        self._target = target
        self._streaming = streaming and bool(target.thread_ts)
        self._post_limit = post_limit
        self._stream_limit = stream_limit
        self._clock = clock
        self._text = ""  # Markdown of the message being written
        self._shown = 0  # how much of it Slack shows
        self._ts = ""
        self._stream: AsyncChatStream | None = None
        self._last = float("-inf")
        self._resume = tuple(resume)
        self._on_message = on_message
        self._index = 0  # which message of the answer is being written
        self.wrote = False
        self.refusal = ""

    @property
    def empty(self) -> bool:
        """Nothing of the answer has been shown or is waiting to be."""
        return not self.wrote and not self._text.strip()

    @property
    def _resuming(self) -> bool:
        """The message being written was posted by an earlier attempt: it is edited, not posted."""
        return self._index < len(self._resume)

    @property
    def _limit(self) -> int:
        return self._stream_limit if self._streaming else self._post_limit

    async def add(self, delta: str) -> None:
        """Take the next piece of the answer; it is shown at the next write slot."""
        self._text += delta
        if self._clock() - self._last >= self._pacer.interval:
            await self._flush()

    async def finish(self) -> None:
        """Show the rest and close the message."""
        await self._flush()
        await self._close_message()

    async def _flush(self) -> None:
        while len(self._text) > self._limit:
            head, tail = split_once(self._text, self._limit, start=self._shown)
            self._text = head
            await self._show()
            await self._close_message()
            self._text = tail
        if self._text.strip():
            await self._show()
        self._last = self._clock()

    async def _show(self) -> None:
        if self._streaming and not self._resuming and await self._append():
            return
        if self._ts and self._shown == len(self._text):
            return
        text = to_mrkdwn(self._text.strip())
        if not text:
            return
        await self._pacer.wait(self._target.channel)
        if not self._ts and self._resuming:
            self._ts = self._resume[self._index]
            await self._end_stream(self._ts)
        if self._ts:
            await self._client.chat_update(channel=self._target.channel, ts=self._ts, text=text)
        else:
            response = await self._client.chat_postMessage(
                channel=self._target.channel, thread_ts=self._target.thread_ts or None, text=text
            )
            self._ts = str(response.get("ts", ""))
            await self._posted(self._ts)
        self._shown = len(self._text)
        self.wrote = True

    async def _posted(self, ts: str) -> None:
        if self._on_message is not None and ts:
            await self._on_message(self._index, ts)

    async def _end_stream(self, ts: str) -> None:
        """A message an earlier attempt was streaming stays in streaming state: end it, quietly."""
        try:
            await self._client.chat_stopStream(channel=self._target.channel, ts=ts)
        except FAILURES as error:
            log.info("no stream to end before editing (%s)", _reason(error))

    async def _append(self) -> bool:
        """Stream the new text; False (and streaming off) when Slack refuses it."""
        new = self._text[self._shown :]
        if not new:
            return True
        started = self._stream.ts if self._stream is not None else None
        try:
            if self._stream is None:
                self._stream = await self._client.chat_stream(
                    channel=self._target.channel,
                    thread_ts=self._target.thread_ts,
                    recipient_team_id=self._target.team or None,
                    recipient_user_id=self._target.user or None,
                    buffer_size=1,  # the pacer batches; every append is sent
                )
            await self._pacer.wait(self._target.channel)
            await self._stream.append(markdown_text=new)
        except FAILURES as error:
            self._stop_streaming(error)
            if self._ts and not started:
                await self._posted(self._ts)
            return False
        if not started and self._stream.ts:
            await self._posted(self._stream.ts)
        self._shown = len(self._text)
        self.wrote = True
        return True

    def _stop_streaming(self, error: Exception) -> None:
        # A started stream keeps its message: later writes edit it with chat.update.
        self.refusal = self.refusal or _reason(error)
        log.info("streaming to Slack failed (%s); posting and editing instead", _reason(error))
        self._ts = (self._stream.ts or "") if self._stream is not None else ""
        self._stream = None
        self._streaming = False
        self._shown = 0 if not self._ts else self._shown

    async def _close_message(self) -> None:
        if self._stream is not None:
            try:
                await self._pacer.wait(self._target.channel)
                await self._stream.stop()
            except FAILURES as error:
                self._stop_streaming(error)
                self._shown = -1  # make sure the whole text stands in the message
                await self._show()
        if self._ts or self._text.strip():
            self._index += 1
        self._stream = None
        self._ts = ""
        self._text = ""
        self._shown = 0
