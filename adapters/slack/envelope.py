"""Signed request bodies, checked before bolt reads them.

bolt trusts a verified body's shape: a JSON array, an ``event`` that is a string or a
``user`` that is a number makes it raise, and the request would end in a 5xx. These models
state the shape bolt and this door read (strict types, other fields allowed), so a
malformed body gets a 400 instead. Events the door does not subscribe to are acknowledged
without bolt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

__all__ = ["Verdict", "check", "parse_body"]

SUBSCRIBED = frozenset(
    {"app_mention", "message", "assistant_thread_started", "assistant_thread_context_changed"}
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Guarded(_Model):
    """Fields bolt looks for on any level while it builds its context; events never carry them."""

    enterprise: None = None
    team_id: str | None = None
    enterprise_id: str | None = None
    authorizations: None = None
    event: None = None
    view: None = None
    item: None = None
    function_data: None = None
    user_id: str | None = None
    channel_id: str | None = None


class _Authorization(_Guarded):
    team: None = None
    user: None = None
    is_bot: bool | None = None
    is_enterprise_install: bool | None = None


class _Context(_Model):
    channel_id: str | None = None
    team_id: str | None = None
    enterprise_id: str | None = None


class _AssistantThread(_Guarded):
    channel: None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    context: _Context | None = None


class _Inner(_Guarded):
    """``event.message`` / ``event.previous_message`` of edits and deletions."""

    type: str | None = None
    subtype: str | None = None
    user: str | None = None
    text: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    bot_id: str | None = None


class _Event(_Guarded):
    type: str
    subtype: str | None = None
    user: str | None = None
    text: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    event_ts: str | None = None
    channel: str | None = None
    channel_type: str | None = None
    team: str | None = None
    user_team: str | None = None
    bot_id: str | None = None
    bot_profile: dict[str, Any] | None = None
    hidden: bool | None = None
    message: _Inner | None = None
    previous_message: _Inner | None = None
    assistant_thread: _AssistantThread | None = None
    function_execution_id: None = None
    bot_access_token: None = None

    @model_validator(mode="after")
    def _assistant_thread_is_whole(self) -> _Event:
        # bolt's assistant middleware fails (500) on a thread without its DM and ts.
        thread = self.assistant_thread
        if self.type.startswith("assistant_thread_") and (
            thread is None or not thread.channel_id or not thread.thread_ts
        ):
            raise ValueError("event.assistant_thread: channel_id and thread_ts are required")
        return self


class _TopLevel(_Guarded):
    """Interaction-payload fields bolt also reads at the top; an event body never has them."""

    team: None = None
    user: None = None
    channel: None = None
    message: None = None
    previous_message: None = None
    assistant_thread: None = None
    thread_ts: None = None
    response_url: None = None
    response_urls: None = None
    function_execution_id: None = None
    bot_access_token: None = None
    is_enterprise_install: None = None


class _Envelope(_TopLevel):
    type: Literal["event_callback"]
    event: _Event  # type: ignore[assignment]
    event_id: str | None = None
    context_team_id: str | None = None
    context_enterprise_id: str | None = None
    api_app_id: str | None = None
    authorizations: list[_Authorization] | None = None  # type: ignore[assignment]
    authed_users: list[str] | None = None
    is_ext_shared_channel: bool | None = None


class _UrlVerification(_TopLevel):
    type: Literal["url_verification"]
    challenge: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a verified body: hand it to bolt, acknowledge it here, or reject it (400)."""

    action: Literal["dispatch", "ack", "reject"]
    reason: str = ""


def parse_body(raw: str, content_type: str) -> dict[str, Any] | None:
    """The body as bolt will parse it (JSON or a form), or None when it is neither."""
    if content_type == "application/json" or raw.startswith("{"):
        try:
            value = json.loads(raw)
            # Slack never sends a lone surrogate ("\ud800"); one could not be stored or logged.
            json.dumps(value, ensure_ascii=False).encode()
        except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            return None
        return value if isinstance(value, dict) else None
    try:
        return dict(parse_qsl(raw, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        return None


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def check(body: dict[str, Any]) -> Verdict:
    """Decide what to do with a parsed, verified body."""
    if "command" in body:  # slash command form: every value is a string
        command = body["command"]
        if isinstance(command, str) and command.startswith("/") and len(command) > 1:
            return Verdict("dispatch")
        return Verdict("reject", "command: a slash command name is required")
    if "ssl_check" in body:
        return Verdict("ack")  # Slack's certificate check wants a 200 and nothing else
    if "payload" in body:
        return Verdict("ack")  # interactivity is not enabled in the manifest
    kind = body.get("type")
    if not isinstance(kind, str):
        return Verdict("reject", "type: a string is required")
    try:
        if kind == "url_verification":
            _UrlVerification.model_validate(body)
            return Verdict("dispatch")
        if kind != "event_callback":
            return Verdict("ack")  # app_rate_limited and other notices
        event = body.get("event")
        if isinstance(event, dict) and isinstance(event.get("type"), str) and event["type"] not in SUBSCRIBED:
            return Verdict("ack")
        _Envelope.model_validate(body)
    except ValidationError as error:
        return Verdict("reject", _first_error(error))
    return Verdict("dispatch")
