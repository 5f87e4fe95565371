"""Personal memory commands: remember a fact, list the facts, delete one.

Facts belong to one person as one bot knows them (``UserKey``: platform, tenant, bot, user) and
are managed and used only in that person's private chat with the bot: a list shown in a group
chat would tell everyone what the bot knows about them.
"""

from __future__ import annotations

from core.commands import Command, CommandCall
from core.memory.base import MAX_FACT_CHARS, MAX_FACTS, Remembered, Store
from core.messages import Lang, say
from core.persona import Persona
from core.types import Inbound, UserKey

__all__ = ["manage_memory", "owner"]


def owner(inbound: Inbound) -> UserKey:
    """Whose personal memory a message reads and writes."""
    key = inbound.key
    return UserKey(platform=key.platform, tenant=key.tenant, user_id=inbound.user_id, bot=key.bot)


async def manage_memory(
    store: Store, call: CommandCall, inbound: Inbound, persona: Persona, lang: Lang
) -> str:
    """Run a REMEMBER, MEMORY or MEMORY_DELETE command; returns the reply.

    ``call.argument`` comes from the already masked message, so facts are stored masked.
    """
    level = persona.speech_level
    if not persona.personal_memory:
        return say("memory_off", lang=lang, level=level)
    if not inbound.is_direct:
        return say("memory_private_only", lang=lang, level=level)
    user = owner(inbound)
    if call.command is Command.REMEMBER:
        fact = " ".join(call.argument.split())  # one line: the list numbers lines
        if not fact:
            return say("remember_empty", lang=lang, level=level)
        if len(fact) > MAX_FACT_CHARS:
            return say("remember_too_long", lang=lang, level=level, limit=MAX_FACT_CHARS)
        outcome = await store.remember(user, fact, limit=MAX_FACTS, retention=persona.retention_seconds)
        if outcome is Remembered.FULL:
            return say("remember_full", lang=lang, level=level, limit=MAX_FACTS)
        if outcome is Remembered.DUPLICATE:
            return say("remember_duplicate", lang=lang, level=level, fact=fact)
        return say("remember_done", lang=lang, level=level, fact=fact)
    if call.command is Command.MEMORY:
        facts = await store.facts(user)
        if not facts:
            return say("memory_empty", lang=lang, level=level)
        items = "\n".join(f"{number}. {fact.text}" for number, fact in enumerate(facts, start=1))
        return say("memory_list", lang=lang, level=level, items=items)
    if not call.argument.isdecimal():
        return say("memory_delete_usage", lang=lang, level=level)
    number = int(call.argument)
    deleted = await store.forget_fact(user, number)
    if deleted is None:
        return say("memory_no_such", lang=lang, level=level, number=number)
    return say("memory_deleted", lang=lang, level=level, number=number, fact=deleted.text)
