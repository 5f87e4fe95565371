"""Kakao i Open Builder skill JSON <-> dari's core types. Pure functions, no I/O.

Request edge: ``parse_skill_request`` turns a raw POST body into a ``SkillRequest`` or raises
``BadSkillRequest`` with a short reason; ``to_inbound`` makes the core's ``Inbound``.
Response edge: ``to_skill_response`` keeps answers inside Kakao's limits (1-3 simpleText outputs
of at most 1,000 characters, at most 10 quick replies whose labels show at most 14 characters);
``to_callback_ack`` is the immediate answer when the real one goes to the callback URL.

An over-long utterance is cut, not refused: a 4xx makes Kakao show the user a generic failure,
while a cut question still gets an answer. The first ``MAX_UTTERANCE_CHARS`` characters are kept
and "…" marks the cut. Everything the body must have (``userRequest``, ``user.id``, a string
``utterance``) is checked strictly; the fields dari only peeks at (params, clientExtra) are
read leniently, so an odd value there never costs the user an answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from adapters.kakao.markdown import MAX_TEXT_CHARS, markdown_to_plain, safe_cut, split_text, try_fit
from core.messages import Lang
from core.persona import SpeechLevel
from core.types import ConversationKey, Inbound

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_LABEL_CHARS",
    "MAX_OUTPUTS",
    "MAX_QUICK_REPLIES",
    "MAX_TEXT_CHARS",
    "MAX_UTTERANCE_CHARS",
    "BadSkillRequest",
    "SkillRequest",
    "error_body",
    "is_builder_test",
    "markdown_to_plain",
    "parse_skill_request",
    "split_text",
    "to_callback_ack",
    "to_inbound",
    "to_skill_response",
    "trusted_callback_url",
]

MAX_BODY_BYTES = 512 * 1024
MAX_UTTERANCE_CHARS = 4000
MAX_USER_ID_CHARS = 256  # documented as at most 70; the margin only guards the storage key
MAX_OUTPUTS = 3
MAX_QUICK_REPLIES = 10
MAX_LABEL_CHARS = 14
_REASON_CHARS = 200
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadSkillRequest(ValueError):
    """The body is not a skill request dari can answer. ``str(error)`` is a short reason."""


def _mapping(value: object) -> object:
    return value if isinstance(value, dict) else {}


def _text_or_none(value: object) -> object:
    return value if isinstance(value, str) else None


# Lenient fields: dari reads them but never depends on them.
_Mapping = Annotated[dict[str, Any], BeforeValidator(_mapping)]
_OptionalText = Annotated[str | None, BeforeValidator(_text_or_none)]


class _Edge(BaseModel):
    # Field names mirror Kakao's JSON (userRequest, callbackUrl) so the models read like the docs.
    model_config = ConfigDict(extra="ignore", frozen=True)


class SkillUser(_Edge):
    """``userRequest.user``: ``id`` is the botUserKey, one per person per bot."""

    id: str = Field(min_length=1, max_length=MAX_USER_ID_CHARS)
    type: _OptionalText = None
    properties: _Mapping = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class UserRequest(_Edge):
    """``userRequest``: what the person said, who they are, and the optional callback URL."""

    utterance: str
    user: SkillUser
    callbackUrl: _OptionalText = None
    params: _Mapping = Field(default_factory=dict)
    timezone: _OptionalText = None
    lang: _OptionalText = None

    @field_validator("utterance")
    @classmethod
    def _fit_utterance(cls, value: str) -> str:
        # JSON may carry lone surrogates ("\ud800"); they cannot be stored or sent as UTF-8.
        value = _SURROGATE.sub("\ufffd", value)
        if len(value) > MAX_UTTERANCE_CHARS:
            value = value[: safe_cut(value, MAX_UTTERANCE_CHARS - 1)] + "…"
        return value


class SkillBot(_Edge):
    """``bot``: the Kakao bot that received the message."""

    id: str | None = None
    name: _OptionalText = None

    @field_validator("id")
    @classmethod
    def _encodable(cls, value: str | None) -> str | None:
        # The bot id becomes the tenant in every storage key; a lone surrogate cannot be stored.
        if value is not None and _SURROGATE.search(value):
            raise ValueError("must be valid Unicode")
        return value


class SkillAction(_Edge):
    """``action``: the skill called; quick-reply and button ``extra`` values arrive in clientExtra."""

    id: _OptionalText = None
    name: _OptionalText = None
    params: _Mapping = Field(default_factory=dict)
    clientExtra: _Mapping = Field(default_factory=dict)


class SkillRequest(_Edge):
    """A Kakao i Open Builder SkillPayload, reduced to what dari reads. Unknown fields are ignored."""

    userRequest: UserRequest
    bot: SkillBot | None = None
    action: SkillAction | None = None


def parse_skill_request(raw: bytes) -> SkillRequest:
    """Parse and check a skill request body.

    Args:
        raw: the HTTP body as received.

    Returns:
        The request, with an over-long utterance already cut to ``MAX_UTTERANCE_CHARS``.

    Raises:
        BadSkillRequest: with a short reason that never repeats the input.
    """
    if not raw:
        raise BadSkillRequest("body is empty")
    if len(raw) > MAX_BODY_BYTES:
        raise BadSkillRequest(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadSkillRequest("body is not valid UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadSkillRequest(f"body is not JSON (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise BadSkillRequest("body is nested too deeply") from None
    except ValueError:  # an integer longer than Python converts (4,300 digits)
        raise BadSkillRequest("body has a number that is too long") from None
    if not isinstance(data, dict):
        raise BadSkillRequest(f"body must be a JSON object, not {_json_kind(data)}")
    try:
        return SkillRequest.model_validate(data)
    except ValidationError as exc:
        raise BadSkillRequest(_reason(exc)) from None


def is_builder_test(req: SkillRequest) -> bool:
    """True for requests from the admin center's bot test panel, where callbacks do not work."""
    return req.userRequest.params.get("surface") == "BuilderBotTest"


def trusted_callback_url(req: SkillRequest, *, allowed_domain: str = "kakao.com") -> str | None:
    """The callback URL, if there is one and it points at Kakao over HTTPS.

    Skill requests carry no signature, so a forged body could name any URL and make dari POST
    the answer into the internal network. Anything but ``https://<host under allowed_domain>``
    is treated as no callback at all.
    """
    url = req.userRequest.callbackUrl
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    domain = allowed_domain.lower()
    if parts.scheme != "https" or parts.username or parts.password or port not in (None, 443):
        return None
    if host != domain and not host.endswith("." + domain):
        return None
    return url


def to_inbound(req: SkillRequest, *, bot: str, message_id: str) -> Inbound:
    """Make the core's ``Inbound`` from a skill request.

    A Kakao channel chat is always 1:1 and the user id is already scoped to the Kakao bot, so
    the user is the conversation and the Kakao bot id is the tenant.

    Args:
        req: the parsed request.
        bot: the dari bot (``bots/<bot>.toml``) that answers.
        message_id: the handler's id for this delivery (Kakao sends none).
    """
    user_id = req.userRequest.user.id
    tenant = (req.bot.id if req.bot is not None else None) or "kakao"
    key = ConversationKey(platform="kakao", tenant=tenant, conversation=user_id, thread="", bot=bot)
    return Inbound(
        key=key,
        message_id=message_id,
        user_id=user_id,
        # Typed and quick-reply utterances can end in a newline ("2021 검색\n").
        text=req.userRequest.utterance.strip(),
        is_direct=True,
    )


def to_skill_response(
    texts: Sequence[str],
    *,
    quick_replies: Sequence[str] = (),
    lang: Lang = "ko",
    level: SpeechLevel = "haeyo",
) -> dict[str, Any]:
    """A SkillResponse of simpleText bubbles, also the body of a callback POST.

    Each text starts its own bubble when all of them fit into ``MAX_OUTPUTS`` bubbles; otherwise
    they are joined with blank lines and split again, cut with the "truncated" notice if needed.
    Texts are sent as given: run ``markdown_to_plain`` first.

    Args:
        texts: answers in order (for example a pending earlier answer, then the new one).
        quick_replies: suggested next messages; blank and repeated ones are dropped, at most
            ``MAX_QUICK_REPLIES`` are kept, and a long one shows a shortened label but still sends
            its full text.
        lang: language of the truncation notice.
        level: speech level of the truncation notice.

    Raises:
        ValueError: if no text has any non-blank character.
    """
    bubbles = _bubbles(texts, lang=lang, level=level)
    if not bubbles:
        raise ValueError("a skill response needs at least one non-blank text")
    template: dict[str, Any] = {"outputs": [{"simpleText": {"text": bubble}} for bubble in bubbles]}
    replies = _quick_replies(quick_replies)
    if replies:
        template["quickReplies"] = replies
    return {"version": "2.0", "template": template}


def to_callback_ack(text: str) -> dict[str, Any]:
    """The immediate answer that hands the reply to the callback URL; it must carry no template.

    Args:
        text: the waiting message, shown through the block's ``{{#webhook.text}}`` variable.
    """
    return {"version": "2.0", "useCallback": True, "data": {"text": text}}


def error_body(reason: str, *, code: str = "bad_request") -> dict[str, Any]:
    """The JSON body of a 4xx answer."""
    return {"error": {"code": code, "message": reason}}


def _bubbles(texts: Sequence[str], *, lang: Lang, level: SpeechLevel) -> list[str]:
    bodies = [text.strip() for text in texts if text.strip()]
    fitted = [try_fit(body, max_chars=MAX_TEXT_CHARS, max_parts=MAX_OUTPUTS) for body in bodies]
    if all(parts is not None for parts in fitted):
        flat = [part for parts in fitted if parts is not None for part in parts]
        if len(flat) <= MAX_OUTPUTS:
            return flat
    return split_text(
        "\n\n".join(bodies), max_chars=MAX_TEXT_CHARS, max_parts=MAX_OUTPUTS, lang=lang, level=level
    )


def _quick_replies(labels: Sequence[str]) -> list[dict[str, str]]:
    replies: list[dict[str, str]] = []
    seen: set[str] = set()
    for raw in labels:
        message = " ".join(raw.split())
        if not message or message in seen:
            continue
        seen.add(message)
        label = message
        if len(label) > MAX_LABEL_CHARS:
            label = label[: safe_cut(label, MAX_LABEL_CHARS - 1)].rstrip() + "…"
        replies.append({"label": label, "action": "message", "messageText": message})
        if len(replies) == MAX_QUICK_REPLIES:
            break
    return replies


_WHAT = {
    "missing": "is missing",
    "string_type": "must be a string",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
}


def _reason(error: ValidationError) -> str:
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    what = _WHAT.get(first["type"], str(first["msg"]).removeprefix("Value error, "))
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    reason = f"{where} {what}{more}"
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
