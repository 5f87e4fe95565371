"""The engine: the one entry point every door calls to turn a message into an answer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime

from core import safety
from core.commands import Command, parse_command
from core.errors import ConfigError, LLMError, LLMNotConfigured, LLMRateLimited
from core.llm.base import LLM
from core.locks import KeyedLocks
from core.memory.base import Store
from core.messages import Lang, detect_language, say
from core.persona import Persona
from core.prompt import build_prompt
from core.types import ConversationKey, Inbound, Turn

__all__ = ["Engine"]

log = logging.getLogger(__name__)

DEDUPE_TTL = 3 * 86400.0  # longer than any platform's redelivery window (Slack: 5 min, Teams: minutes)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Answers messages: dedupe, one turn at a time per conversation, commands, prompt, LLM, memory."""

    def __init__(
        self,
        *,
        store: Store,
        llm: LLM | None,
        personas: Mapping[str, Persona],
        default_model: str,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if "default" not in personas:
            raise ConfigError("no default bot: bots/default.toml is required", source="bots/default.toml")
        self._store = store
        self._llm = llm
        self._personas = dict(personas)
        self._default_model = default_model
        self._clock = clock
        self._locks = KeyedLocks()

    @property
    def store(self) -> Store:
        return self._store

    @property
    def llm_configured(self) -> bool:
        return self._llm is not None

    def persona(self, bot: str) -> Persona:
        """The persona of a bot, falling back to the default one."""
        return self._personas.get(bot) or self._personas["default"]

    async def respond(self, inbound: Inbound) -> str:
        """The whole answer at once ("" for a duplicate)."""
        return "".join([delta async for delta in self.stream(inbound)])

    async def stream(self, inbound: Inbound) -> AsyncIterator[str]:
        """Stream the answer to one message as text deltas.

        A message already seen (same platform and message id) yields nothing and costs no
        LLM call. Messages of one conversation are answered strictly in arrival order;
        different conversations run concurrently. LLM failures become a polite apology.
        """
        key = inbound.key
        persona = self.persona(key.bot)
        text = safety.mask(safety.normalize(inbound.text))
        lang: Lang = detect_language(text, persona.language)
        # The in-process lock is taken before any await so arrival order is kept.
        async with self._locks.hold(key.id), self._store.lock(key):
            # Message ids are unique within a chat (Slack ts is per channel), not across chats.
            chat = ConversationKey(
                platform=key.platform, tenant=key.tenant, conversation=key.conversation, bot=key.bot
            )
            token = f"{chat.id}:{inbound.message_id}"
            if not await self._store.claim(token, ttl=DEDUPE_TTL):
                log.info("duplicate message dropped", extra={"conversation": key.id})
                return
            command = parse_command(text)
            if command is not None:
                yield await self._run_command(command, inbound, persona, lang)
                return
            if not text.strip():
                yield say("empty_message", lang=lang, level=persona.speech_level)
                return
            if self._llm is None:
                yield say("not_configured", lang=lang, level=persona.speech_level)
                return
            async for delta in self._answer(inbound, text, persona, lang, self._llm):
                yield delta

    async def _answer(
        self, inbound: Inbound, text: str, persona: Persona, lang: Lang, llm: LLM
    ) -> AsyncIterator[str]:
        key = inbound.key
        history = await self._store.history(key, limit=persona.history_turns)
        user_turn = Turn(
            role="user",
            text=text,
            at=time.time(),
            user_id=inbound.user_id,
            user_name=inbound.user_name,
            message_id=inbound.message_id,
        )
        messages = build_prompt(persona, history, user_turn, now=self._clock(), group=not inbound.is_direct)
        parts: list[str] = []
        try:
            async for delta in llm.stream(
                messages,
                model=persona.model or self._default_model,
                temperature=persona.temperature,
                max_tokens=persona.max_answer_tokens,
            ):
                if delta:
                    parts.append(delta)
                    yield delta
        except LLMError as error:
            log.warning("LLM failed: %s", type(error).__name__, extra={"conversation": key.id})
            yield self._apology(error, persona, lang, midway=bool(parts))
            if not parts:
                return
        if not "".join(parts).strip():
            log.warning("LLM gave an empty answer", extra={"conversation": key.id})
            yield say("llm_failed", lang=lang, level=persona.speech_level)
            return
        answer = safety.mask("".join(parts))
        reply = Turn(role="assistant", text=answer, at=time.time(), message_id=inbound.message_id)
        await self._store.append(key, [user_turn, reply], retention=persona.retention_seconds)

    def _apology(self, error: LLMError, persona: Persona, lang: Lang, *, midway: bool) -> str:
        level = persona.speech_level
        if midway:
            return "\n\n" + say("llm_failed_midway", lang=lang, level=level)
        if isinstance(error, LLMNotConfigured):
            return say("not_configured", lang=lang, level=level)
        if isinstance(error, LLMRateLimited) and error.retry_after:
            return say("llm_busy", lang=lang, level=level, seconds=max(1, round(error.retry_after)))
        return say("llm_failed", lang=lang, level=level)

    async def _run_command(self, command: Command, inbound: Inbound, persona: Persona, lang: Lang) -> str:
        level = persona.speech_level
        if command is Command.RESET:
            await self._store.clear(inbound.key)
            return say("reset_done", lang=lang, level=level)
        if command is Command.FORGET:
            removed = await self._store.forget_user(
                platform=inbound.key.platform, tenant=inbound.key.tenant, user_id=inbound.user_id
            )
            log.info("user data erased", extra={"conversation": inbound.key.id, "items": removed})
            return say("forget_done", lang=lang, level=level)
        return say("help", lang=lang, level=level, name=persona.name)
