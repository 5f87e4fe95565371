"""Persona: who a bot is and how it speaks, loaded from ``bots/<id>.toml`` at start-up."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from core.errors import ConfigError

__all__ = ["Persona", "SpeechLevel", "load_persona", "load_personas"]

SpeechLevel = Literal["haeyo", "hapsyo"]


@dataclass(frozen=True, slots=True)
class Persona:
    """A validated bot definition.

    Attributes:
        id: the file stem (``bots/default.toml`` -> "default").
        name: the assistant's name as users see it.
        speech_level: "haeyo" (해요체, the default) or "hapsyo" (하십시오체).
        language: "ko" or "en": the language of notices when the user's own is unclear.
        greeting: the first message in a new chat.
        quick_replies: suggested follow-ups (Kakao quick replies, Slack suggested prompts).
        instructions: the persona's own system prompt text.
        model: the model name; "" means the service default (``DARI_MODEL``).
        temperature: sampling temperature.
        max_answer_tokens: a cap on one answer.
        history_tokens: the token budget for past turns in a prompt.
        history_turns: at most this many past turns are loaded.
        retention_days: conversation data expires this many days after the last message, and
            a person's remembered facts this many days after their last message to the bot.
        summary_tokens: the most a conversation's rolling summary may take in a prompt.
        personal_memory: whether users may ask the bot to remember facts about them.
    """

    id: str
    name: str
    speech_level: SpeechLevel
    language: Literal["ko", "en"]
    greeting: str
    quick_replies: tuple[str, ...]
    instructions: str
    model: str
    temperature: float
    max_answer_tokens: int
    history_tokens: int
    history_turns: int
    retention_days: int
    summary_tokens: int = 600
    personal_memory: bool = True

    @property
    def retention_seconds(self) -> float:
        return self.retention_days * 86400.0


_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")

# Kakao i 오픈빌더 cuts quick-reply labels at 14 characters and allows at most 10 of them;
# the strictest platform sets the rule for every bot.
QUICK_REPLY_MAX_CHARS = 14
QUICK_REPLIES_MAX = 10

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=QUICK_REPLY_MAX_CHARS)
]


class _BotFile(BaseModel):
    """The schema of one bot file. Strict: a typo or a string where a number belongs is an error."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: _Text
    greeting: _Text
    instructions: _Text
    speech_level: SpeechLevel = "haeyo"
    language: Literal["ko", "en"] = "ko"
    quick_replies: Annotated[list[_Label], Field(max_length=QUICK_REPLIES_MAX)] = []
    model: str = ""
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.3
    max_answer_tokens: Annotated[int, Field(ge=16, le=32_768)] = 1024
    history_tokens: Annotated[int, Field(ge=200, le=100_000)] = 3000
    history_turns: Annotated[int, Field(ge=1, le=200)] = 40
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    summary_tokens: Annotated[int, Field(ge=100, le=4000)] = 600
    personal_memory: bool = True


def _nfc(value: object) -> object:
    # Files saved on macOS can hold decomposed Hangul (NFD): 14 syllables would count as ~40.
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(item) for item in value]
    if isinstance(value, dict):
        return {key: _nfc(item) for key, item in value.items()}
    return value


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def load_persona(path: Path) -> Persona:
    """Read and validate one bot file; its id is the file stem.

    Raises:
        ConfigError: the file cannot be read, is not valid TOML, or breaks the schema;
            ``source`` is the file and ``field`` the first offending field
            (``quick_replies.2`` for the third quick reply).
    """
    source = str(path)
    if not _ID.fullmatch(path.stem):
        raise ConfigError(f"{source}: the file name must be a bot id of a-z, 0-9, '-' and '_'", source=source)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{source}: cannot read: {error.strerror or error}", source=source) from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{source}: not UTF-8 text: {error.reason}", source=source) from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: invalid TOML: {error}", source=source) from error
    try:
        bot = _BotFile.model_validate(_nfc(raw))
    except ValidationError as error:
        problems = error.errors(include_url=False)
        first = _field(problems[0]["loc"])
        details = "; ".join(f"{_field(p['loc']) or '(file)'}: {p['msg']}" for p in problems)
        raise ConfigError(f"{source}: {details}", source=source, field=first) from error
    return Persona(
        id=path.stem,
        name=bot.name,
        speech_level=bot.speech_level,
        language=bot.language,
        greeting=bot.greeting,
        quick_replies=tuple(bot.quick_replies),
        instructions=bot.instructions,
        model=bot.model.strip(),
        temperature=bot.temperature,
        max_answer_tokens=bot.max_answer_tokens,
        history_tokens=bot.history_tokens,
        history_turns=bot.history_turns,
        retention_days=bot.retention_days,
        summary_tokens=bot.summary_tokens,
        personal_memory=bot.personal_memory,
    )


def load_personas(directory: Path) -> dict[str, Persona]:
    """Load every ``*.toml`` bot in a directory, keyed by id (the file stem).

    Raises:
        ConfigError: the directory is missing, it has no ``default.toml``, or any file is invalid.
    """
    if not directory.is_dir():
        raise ConfigError(f"{directory}: the bots directory does not exist", source=str(directory))
    default = directory / "default.toml"
    if not default.is_file():
        raise ConfigError(f"{default}: missing; every deployment needs a default bot", source=str(default))
    return {path.stem: load_persona(path) for path in sorted(directory.glob("*.toml"))}
