"""Teams activities in, core types out: validation and pure functions, no SDK objects.

The request body is validated once into ``TeamsActivity`` (pydantic, at the edge); everything
after that reads typed fields. Shapes follow the Teams docs: personal chats carry
``conversation.conversationType == "personal"``; channel threads carry
``"19:…@thread.tacv2;messageid=<root>"`` conversation ids; mentions are ``<at>Name</at>`` in the
text plus a ``mention`` entity; the tenant is ``channelData.tenant.id`` (or ``conversation.tenantId``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.types import ConversationKey, Inbound

__all__ = [
    "Account",
    "Conversation",
    "ConversationKind",
    "Feedback",
    "MalformedActivity",
    "TeamsActivity",
    "bot_was_added",
    "clean_text",
    "conversation_key",
    "conversation_kind",
    "mentions_bot",
    "parse_activity",
    "tenant_of",
    "to_feedback",
    "to_inbound",
]

ConversationKind = Literal["personal", "groupChat", "channel"]

_THREAD_MARK = ";messageid="
_AT_TAG = re.compile(r"<at>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"[ \t]{2,}")


class _Model(BaseModel):
    # strict: a number where Teams sends a string is a malformed request, not something to coerce.
    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True, frozen=True)


class Account(_Model):
    """A user or a bot (``from``, ``recipient``, ``membersAdded[]``)."""

    id: str = Field(min_length=1)
    name: str | None = None
    aad_object_id: str | None = Field(default=None, alias="aadObjectId")


class Conversation(_Model):
    id: str = Field(min_length=1)
    conversation_type: str | None = Field(default=None, alias="conversationType")
    tenant_id: str | None = Field(default=None, alias="tenantId")
    is_group: bool | None = Field(default=None, alias="isGroup")


class TeamsActivity(_Model):
    """The fields of a Bot Framework activity that dari reads; the rest is kept as extra."""

    type: str = Field(min_length=1)
    id: str | None = None
    service_url: str = Field(alias="serviceUrl")
    channel_id: str | None = Field(default=None, alias="channelId")
    conversation: Conversation
    from_: Account = Field(alias="from")
    recipient: Account
    text: str | None = None
    entities: list[dict[str, Any]] | None = None
    channel_data: dict[str, Any] | None = Field(default=None, alias="channelData")
    members_added: list[Account] | None = Field(default=None, alias="membersAdded")
    name: str | None = None
    value: Any = None
    reply_to_id: str | None = Field(default=None, alias="replyToId")

    @field_validator("service_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _message_id(self) -> TeamsActivity:
        # The id is what makes a redelivery recognisable; Teams always sends one.
        if self.type == "message" and not self.id:
            raise ValueError("id: a message needs an id")
        return self


class MalformedActivity(ValueError):
    """The request body is not a Teams activity dari can read."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """A 👍/👎 on one of the bot's answers (invoke ``message/submitAction``).

    Attributes:
        reaction: "like" or "dislike".
        text: what the user wrote in the feedback form, or "".
        answer_id: the id of the bot message the feedback is about.
        key: the conversation of that message.
        user_id: who gave the feedback.
    """

    reaction: Literal["like", "dislike"]
    text: str
    answer_id: str
    key: ConversationKey
    user_id: str


def parse_activity(body: object) -> TeamsActivity:
    """Validate a decoded JSON body.

    Raises:
        MalformedActivity: naming the first field at fault.
    """
    if not isinstance(body, dict):
        raise MalformedActivity("the body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") cannot be stored or sent on
        raise MalformedActivity("the body is not valid Unicode") from None
    try:
        return TeamsActivity.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise MalformedActivity(f"{where}: {first['msg']}") from None


def tenant_of(activity: TeamsActivity) -> str:
    """The Microsoft 365 tenant: ``channelData.tenant.id``, else ``conversation.tenantId``."""
    tenant = (activity.channel_data or {}).get("tenant")
    if isinstance(tenant, dict) and isinstance(tenant.get("id"), str) and tenant["id"]:
        return str(tenant["id"])
    return activity.conversation.tenant_id or ""


def conversation_kind(activity: TeamsActivity) -> ConversationKind:
    kind = activity.conversation.conversation_type
    if kind == "personal":
        return "personal"
    if kind == "channel":
        return "channel"
    return "groupChat" if activity.conversation.is_group else "personal"


def conversation_key(activity: TeamsActivity, *, bot: str = "default") -> ConversationKey:
    """Tenant + conversation, and the thread root for a channel thread (one memory per thread)."""
    conversation, _, thread = activity.conversation.id.partition(_THREAD_MARK)
    return ConversationKey(
        platform="teams", tenant=tenant_of(activity), conversation=conversation, thread=thread, bot=bot
    )


def _same_account(a: str, b: str) -> bool:
    # The bot is "28:<app id>" as recipient; some clients put the bare app id in mentions.
    return a.removeprefix("28:") == b.removeprefix("28:")


def _mentions(activity: TeamsActivity) -> list[tuple[str, str]]:
    """(mentioned id, entity text) of every well-formed mention entity."""
    found: list[tuple[str, str]] = []
    for entity in activity.entities or ():
        mentioned = entity.get("mentioned")
        if entity.get("type") != "mention" or not isinstance(mentioned, dict):
            continue
        mentioned_id, text = mentioned.get("id"), entity.get("text")
        if isinstance(mentioned_id, str) and isinstance(text, str):
            found.append((mentioned_id, text))
    return found


def mentions_bot(activity: TeamsActivity) -> bool:
    """True when a mention entity names this bot (entities, not the editable text, decide)."""
    return any(_same_account(mid, activity.recipient.id) for mid, _ in _mentions(activity))


def clean_text(activity: TeamsActivity) -> str:
    """The message text without the bot's own mention; other ``<at>`` mentions become plain names."""
    text = activity.text or ""
    for mentioned_id, entity_text in _mentions(activity):
        if _same_account(mentioned_id, activity.recipient.id):
            text = text.replace(entity_text, " ")
    if activity.recipient.name:
        text = text.replace(f"<at>{activity.recipient.name}</at>", " ")
    text = _AT_TAG.sub(lambda match: match.group(1).strip(), text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.strip().splitlines()).strip()


def _user_id(account: Account) -> str:
    # The Entra object id is stable across bots and app registrations; "29:" ids are not.
    return account.aad_object_id or account.id


def to_inbound(activity: TeamsActivity, *, bot: str = "default") -> Inbound:
    """A message activity as the engine's ``Inbound`` (the activity id dedupes redeliveries)."""
    return Inbound(
        key=conversation_key(activity, bot=bot),
        message_id=activity.id or "",  # required for messages by TeamsActivity
        user_id=_user_id(activity.from_),
        user_name=(activity.from_.name or "").strip(),
        text=clean_text(activity),
        is_direct=conversation_kind(activity) == "personal",
    )


def bot_was_added(activity: TeamsActivity) -> bool:
    """True for the conversationUpdate that installs the bot (not for other members joining)."""
    return any(_same_account(member.id, activity.recipient.id) for member in activity.members_added or ())


def _feedback_text(raw: object) -> str:
    # Teams sends the form as a JSON string {"feedbackText": "..."}; older clients send plain text.
    form: object = raw
    if isinstance(raw, str):
        try:
            form = json.loads(raw)
        except ValueError:
            return raw.strip()
    text: object = form.get("feedbackText") if isinstance(form, dict) else None
    return text.strip() if isinstance(text, str) else ""


def to_feedback(activity: TeamsActivity, *, bot: str = "default") -> Feedback | None:
    """The feedback in a ``message/submitAction`` invoke, or None when it is not well-formed."""
    value = activity.value
    if not isinstance(value, dict) or value.get("actionName") != "feedback":
        return None
    action = value.get("actionValue")
    if not isinstance(action, dict) or action.get("reaction") not in ("like", "dislike"):
        return None
    reaction: Literal["like", "dislike"] = "like" if action["reaction"] == "like" else "dislike"
    return Feedback(
        reaction=reaction,
        text=_feedback_text(action.get("feedback")),
        answer_id=activity.reply_to_id or "",
        key=conversation_key(activity, bot=bot),
        user_id=_user_id(activity.from_),
    )
