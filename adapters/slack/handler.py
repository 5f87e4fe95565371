"""The Slack door's transport: a bolt AsyncApp behind POST /slack/events, and Socket Mode."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.middleware import error_json
from adapters.runtime import ENGINE, TASKS
from adapters.settings import Settings
from adapters.slack.answer import DoorOptions, Responder
from adapters.slack.client import web_client
from adapters.slack.deliver import SlackDeliverer
from adapters.slack.envelope import SUBSCRIBED, check, parse_body
from adapters.slack.pacing import ChannelPacer
from adapters.worker import WORKER
from core.errors import ConfigError

__all__ = ["SlackDoor", "to_aiohttp_response", "to_bolt_request"]

log = logging.getLogger(__name__)

_EVENTS = re.compile("^(" + "|".join(sorted(SUBSCRIBED)) + ")$")


class _QuietTokenNotice(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment itself and, since we hand it a client,
    warns on every start that the token is unused; the client carries that very token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_LOG = logging.getLogger("adapters.slack.bolt")
_BOLT_LOG.addFilter(_QuietTokenNotice())


def to_bolt_request(body: str, request: web.Request) -> AsyncBoltRequest:
    """An aiohttp request (its body already read and verified) as bolt's request."""
    headers: dict[str, str | list[str]] = {name: request.headers.getall(name) for name in request.headers}
    return AsyncBoltRequest(body=body, query=request.query_string, headers=dict(headers))


def to_aiohttp_response(response: BoltResponse) -> web.Response:
    """bolt's response as an aiohttp response (bolt sets no cookies for events or commands)."""
    return web.Response(
        status=response.status,
        body=response.body.encode(),
        headers=response.first_headers_without_set_cookie(),
    )


def _malformed(reason: str) -> web.Response:
    response = error_json(400, f"malformed Slack request: {reason}")
    response.headers["X-Slack-No-Retry"] = "1"  # a retry would be just as malformed
    return response


class SlackDoor:
    """Slack's way in: verifies and checks every request, then lets bolt route it to a listener.

    The bolt app, the Web API client and its session live from start-up to shutdown
    (``lifetime``, a cleanup context appended after the one that creates the engine).
    """

    def __init__(self, *, settings: Settings, options: DoorOptions) -> None:
        token, secret = settings.slack_bot_token, settings.slack_signing_secret
        if token is None or secret is None:
            raise ConfigError("the Slack door needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET", source="env")
        self._token = token.get_secret_value()
        self._secret = secret.get_secret_value()
        self._app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
        self._api_url = settings.slack_api_url
        self._options = options
        self._verifier = SignatureVerifier(self._secret)
        self._bolt: AsyncApp | None = None
        self._responder: Responder | None = None

    @property
    def socket_mode(self) -> bool:
        return bool(self._app_token)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the Web API session, bolt, and the Socket Mode connection when asked for."""
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = web_client(token=self._token, base_url=self._api_url, session=session)
            pacer = ChannelPacer(interval=self._options.write_interval)
            engine, worker = app[ENGINE], app[WORKER]
            worker.add(
                "slack", SlackDeliverer(engine=engine, client=client, pacer=pacer, options=self._options)
            )
            responder = Responder(
                engine=engine,
                client=client,
                tasks=app[TASKS],
                worker=worker,
                pacer=pacer,
                options=self._options,
            )
            bolt = self._bolt = self._bolt_app(client, responder)
            self._responder = responder
            socket = AsyncSocketModeHandler(bolt, app_token=self._app_token) if self._app_token else None
            # Connecting retries until Slack answers; start-up must not wait for it.
            connecting = asyncio.create_task(socket.connect_async()) if socket else None  # type: ignore[no-untyped-call]
            try:
                yield
            finally:
                self._bolt = self._responder = None
                if socket is not None and connecting is not None:
                    connecting.cancel()
                    await asyncio.gather(connecting, return_exceptions=True)
                    await socket.close_async()  # type: ignore[no-untyped-call]

    def _bolt_app(self, client: AsyncWebClient, responder: Responder) -> AsyncApp:
        bolt = AsyncApp(
            name="dari",
            client=client,
            signing_secret=self._secret,
            # Listeners record the job, then acknowledge: bolt must wait for them; its own
            # background runner (bare ensure_future) is never used.
            process_before_response=True,
            logger=_BOLT_LOG,
        )

        # The job is recorded before Slack hears the ack (durable with Redis), so an answer
        # survives a process that dies right after acknowledging.
        async def on_event(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
            await responder.on_event(body, bot_user_id=context.bot_user_id, bot_id=context.bot_id)
            await ack()

        async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
            await responder.on_command(body)
            await ack()

        bolt.event(_EVENTS)(on_event)
        bolt.command(re.compile(r"^/"))(on_command)  # whatever name the workspace gave it
        return bolt

    def _signed(self, body: str, headers: Mapping[str, str]) -> bool:
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        # compare_digest refuses str with non-ASCII characters (TypeError): refuse them here.
        if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii() and signature):
            return False
        return self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """POST /slack/events: events, URL verification and slash commands."""
        bolt = self._bolt
        if bolt is None:
            return error_json(503, "the Slack door is not running")
        try:
            text = (await request.read()).decode("utf-8")
        except web.HTTPRequestEntityTooLarge:
            return error_json(413, "request body is too large")
        except UnicodeDecodeError:
            return _malformed("the body is not UTF-8")
        if not self._signed(text, request.headers):
            return error_json(401, "invalid or expired Slack signature")
        body = parse_body(text, request.headers.get("Content-Type", "").split(";")[0])
        if body is None:
            return _malformed("the body is neither a JSON object nor a form")
        verdict = check(body)
        if verdict.action == "reject":
            return _malformed(verdict.reason)
        if verdict.action == "ack":
            return web.Response(status=200)
        if "command" in body and self._responder is not None:
            # Not through bolt: it re-parses the raw body and takes any form that contains the
            # word "payload" (say, in the command's text) for an interactivity payload.
            await self._responder.on_command(body)
            return web.Response(status=200)
        return to_aiohttp_response(await bolt.async_dispatch(to_bolt_request(text, request)))
