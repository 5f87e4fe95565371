"""Context for log lines: which conversation the current task is working on."""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["conversation_id"]

# Read by the log formatter; set by the engine while it answers a message. Tasks started from
# there (background summaries, deliveries) inherit it.
conversation_id: ContextVar[str] = ContextVar("dari_conversation_id", default="")
