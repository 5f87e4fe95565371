"""The LLM port and its implementation over the Chat Completions API."""

from core.llm.base import LLM as LLM
from core.llm.openai import OpenAIChat as OpenAIChat

__all__ = ["LLM", "OpenAIChat"]
