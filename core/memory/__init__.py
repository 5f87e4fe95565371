"""Conversation memory: the ``Store`` port and its two implementations.

``EmbeddedStore`` keeps everything in one SQLite file (the default, one process);
``RedisStore`` shares memory, dedupe marks and turn locks between processes.
"""

from core.memory.base import Store
from core.memory.embedded import EmbeddedStore
from core.memory.redis import RedisStore

__all__ = ["EmbeddedStore", "RedisStore", "Store"]
