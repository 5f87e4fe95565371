"""The engine: the one entry point every door calls to turn a message into an answer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise

from core import safety
from core.commands import Command, CommandCall, parse_command
from core.errors import ConfigError, LLMCircuitOpen, LLMError, LLMNotConfigured, LLMRateLimited
from core.limits import RateLimiter, refusal
from core.llm.base import LLM
from core.locks import KeyedLocks
from core.logctx import conversation_id
from core.memory.base import MAX_TURN_CHARS, Store
from core.messages import Lang, detect_language, duration, say
from core.observer import LLMCall, NullObserver, Observer, Outcome
from core.persona import Persona
from core.personal import manage_memory, owner
from core.prompt import build_prompt
from core.summary import Summarizer
from core.tokens import count_messages, count_tokens
from core.types import ConversationKey, Fact, Inbound, Turn

__all__ = ["Engine"]

log = logging.getLogger(__name__)

DEDUPE_TTL = 3 * 86400.0  # longer than any platform's redelivery window (Slack: 5 min, Teams: minutes)
_MEMORY_COMMANDS = (Command.REMEMBER, Command.MEMORY, Command.MEMORY_DELETE)


def _stored(text: str) -> str:
    # A bound on what one turn can make the store hold; prompts replay far less than this anyway.
    return text if len(text) <= MAX_TURN_CHARS else text[:MAX_TURN_CHARS] + " …"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _stored_answer(history: list[Turn], message_id: str) -> str | None:
    # Only a job run again after its process died can find its own answer already stored.
    for before, turn in pairwise(history):
        if before.role == "user" and before.message_id == message_id and turn.role == "assistant":
            return turn.text if turn.message_id == message_id else None
    return None


class Engine:
    """Answers messages: dedupe, one turn at a time per conversation, commands, prompt, LLM, memory.

    The engine owns background work (folding old turns into summaries): ``close`` it before
    closing the store and the LLM.

    Args:
        store: conversation memory.
        llm: the model that answers, or None when none is configured.
        personas: the bots by id; "default" is required.
        default_model: the model of bots that name none.
        clock: the current time for prompts.
        summary_llm: the model that writes summaries; ``llm`` when None.
        observer: receives events for metrics.
        limiter: rate limits ("user" and "tenant" scopes), checked before the LLM is called.
    """

    def __init__(
        self,
        *,
        store: Store,
        llm: LLM | None,
        personas: Mapping[str, Persona],
        default_model: str,
        clock: Callable[[], datetime] = _utcnow,
        summary_llm: LLM | None = None,
        observer: Observer | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        if "default" not in personas:
            raise ConfigError("no default bot: bots/default.toml is required", source="bots/default.toml")
        self._store = store
        self._llm = llm
        self._personas = dict(personas)
        self._default_model = default_model
        self._clock = clock
        self._locks = KeyedLocks()
        self._observer: Observer = observer or NullObserver()
        self._limiter = limiter
        writer = summary_llm or llm
        self._summarizer = (
            None if writer is None else Summarizer(store=store, llm=writer, default_model=default_model)
        )

    @property
    def store(self) -> Store:
        return self._store

    @property
    def llm_configured(self) -> bool:
        return self._llm is not None

    def persona(self, bot: str) -> Persona:
        """The persona of a bot, falling back to the default one."""
        return self._personas.get(bot) or self._personas["default"]

    async def settle(self) -> None:
        """Wait until background work started so far has finished (tests, benchmarks)."""
        if self._summarizer is not None:
            await self._summarizer.settle()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop background work: wait up to ``timeout`` seconds, then cancel what is left."""
        if self._summarizer is not None:
            await self._summarizer.close(timeout)

    def seen(self, inbound: Inbound) -> dict[str, float]:
        """The message's dedupe token with its lifetime in seconds, for a door that queues the
        message: the queue claims it with the job (``Worker.submit``), then the door answers
        with ``stream(inbound, accepted=True)``."""
        key = inbound.key
        # Message ids are unique within a chat (Slack ts is per channel), not across chats.
        chat = ConversationKey(
            platform=key.platform, tenant=key.tenant, conversation=key.conversation, bot=key.bot
        )
        return {f"{chat.id}:{inbound.message_id}": DEDUPE_TTL}

    def dropped(self, inbound: Inbound) -> None:
        """Log and count a message dropped as seen before."""
        log.info("duplicate message dropped", extra={"conversation": inbound.key.id})
        self._report(inbound, "duplicate")

    async def accept(self, inbound: Inbound) -> bool:
        """Claim a message as new (platform and message id): False for a duplicate."""
        [(token, ttl)] = self.seen(inbound).items()
        if await self._store.claim(token, ttl=ttl):
            return True
        self.dropped(inbound)
        return False

    async def respond(self, inbound: Inbound, *, accepted: bool = False) -> str:
        """The whole answer at once ("" for a duplicate)."""
        return "".join([delta async for delta in self.stream(inbound, accepted=accepted)])

    async def stream(self, inbound: Inbound, *, accepted: bool = False) -> AsyncIterator[str]:
        """Stream the answer to one message as text deltas.

        A message already seen (same platform and message id) yields nothing and costs no
        LLM call; with ``accepted`` the caller has claimed it already (``accept``). A message
        whose answer is already stored (a job run again after a crash) gets that answer back,
        without a second LLM call or a second write. Messages of one conversation are answered
        strictly in arrival order; different conversations run concurrently. LLM failures
        become a polite apology.
        """
        key = inbound.key
        persona = self.persona(key.bot)
        text = safety.mask(safety.normalize(inbound.text))
        lang: Lang = detect_language(text, persona.language)
        conversation_id.set(key.id)
        # The in-process lock is taken before any await so arrival order is kept.
        async with self._locks.hold(key.id), self._store.lock(key):
            if not accepted and not await self.accept(inbound):
                return
            command = parse_command(text)
            if command is not None:
                yield await self._run_command(command, inbound, persona, lang)
                self._report(inbound, "command")
                return
            if not text.strip():
                yield say("empty_message", lang=lang, level=persona.speech_level)
                self._report(inbound, "empty")
                return
            if self._llm is None:
                yield say("not_configured", lang=lang, level=persona.speech_level)
                self._report(inbound, "not_configured")
                return
            async for delta in self._answer(inbound, text, persona, lang, self._llm):
                yield delta

    def _report(self, inbound: Inbound, outcome: Outcome, *, scope: str = "") -> None:
        seconds = (datetime.now(UTC) - inbound.received_at).total_seconds()
        self._observer.message(inbound.key.platform, outcome, seconds=max(seconds, 0.0), scope=scope)

    async def _answer(
        self, inbound: Inbound, text: str, persona: Persona, lang: Lang, llm: LLM
    ) -> AsyncIterator[str]:
        key = inbound.key
        history = await self._store.history(key, limit=persona.history_turns)
        if (earlier := _stored_answer(history, inbound.message_id)) is not None:
            yield earlier
            self._report(inbound, "duplicate")
            return
        # After the replay check: a job run again after a crash must not spend a second token.
        refused = None if self._limiter is None else await refusal(self._limiter, inbound)
        if refused is not None:
            wait = duration(refused.seconds, lang=lang)
            yield say(refused.message, lang=lang, level=persona.speech_level, wait=wait)
            self._report(inbound, "limited", scope=refused.scope)
            return
        summary = await self._store.summary(key)
        facts = await self._facts(inbound, persona)
        user_turn = Turn(
            role="user",
            text=text,
            at=time.time(),
            user_id=inbound.user_id,
            user_name=inbound.user_name,
            message_id=inbound.message_id,
        )
        messages = build_prompt(
            persona,
            history,
            user_turn,
            now=self._clock(),
            group=not inbound.is_direct,
            summary=summary.text,
            facts=[fact.text for fact in facts],
        )
        parts: list[str] = []
        started = time.monotonic()
        first: float | None = None
        failure = ""
        try:
            async for delta in llm.stream(
                messages,
                model=persona.model or self._default_model,
                temperature=persona.temperature,
                max_tokens=persona.max_answer_tokens,
            ):
                if delta:
                    if first is None:
                        first = time.monotonic() - started
                    parts.append(delta)
                    yield delta
        except LLMError as error:
            failure = type(error).__name__
            # While the breaker is open every message would log this; the breaker logs once.
            level = logging.DEBUG if isinstance(error, LLMCircuitOpen) else logging.WARNING
            log.log(level, "LLM failed: %s", failure, extra={"conversation": key.id})
            yield self._apology(error, persona, lang, midway=bool(parts))
        finally:
            self._observer.llm_call(
                LLMCall(
                    platform=key.platform,
                    seconds=time.monotonic() - started,
                    first_token_seconds=first,
                    tokens_in=count_messages(messages),
                    tokens_out=count_tokens("".join(parts)),
                    error=failure,
                )
            )
        if failure and not parts:
            self._report(inbound, "apology")
            return
        if not "".join(parts).strip():
            log.warning("LLM gave an empty answer", extra={"conversation": key.id})
            yield say("llm_failed", lang=lang, level=persona.speech_level)
            self._report(inbound, "apology")
            return
        answer = safety.mask("".join(parts))
        reply = Turn(role="assistant", text=_stored(answer), at=time.time(), message_id=inbound.message_id)
        stored = replace(user_turn, text=_stored(user_turn.text))
        await self._store.append(key, [stored, reply], retention=persona.retention_seconds)
        self._report(inbound, "partial" if failure else "answered")
        # Turns the prompt could not hold (by count or by tokens) are folded in the background.
        shown = len(messages) - 2
        if self._summarizer is not None and (
            len(history) + 2 > persona.history_turns or shown < len(history)
        ):
            self._summarizer.request(key, persona)

    async def _facts(self, inbound: Inbound, persona: Persona) -> list[Fact]:
        # Personal facts only ever enter a private chat's prompt.
        if not inbound.is_direct or not persona.personal_memory:
            return []
        return await self._store.facts(owner(inbound))

    def _apology(self, error: LLMError, persona: Persona, lang: Lang, *, midway: bool) -> str:
        level = persona.speech_level
        if midway:
            return "\n\n" + say("llm_failed_midway", lang=lang, level=level)
        if isinstance(error, LLMNotConfigured):
            return say("not_configured", lang=lang, level=level)
        if isinstance(error, LLMRateLimited) and error.retry_after:
            return say("llm_busy", lang=lang, level=level, seconds=max(1, round(error.retry_after)))
        return say("llm_failed", lang=lang, level=level)

    async def _run_command(self, call: CommandCall, inbound: Inbound, persona: Persona, lang: Lang) -> str:
        level = persona.speech_level
        command = call.command
        if command in _MEMORY_COMMANDS:
            return await manage_memory(self._store, call, inbound, persona, lang)
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
