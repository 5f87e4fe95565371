"""The LLM port over the Chat Completions API: OpenAI, Azure OpenAI, or any compatible server.

Retries, backoff (honouring ``Retry-After``) and timeouts are the ``openai`` client's own;
this module only chooses the client, reads the stream, and turns the client's errors into
``core.errors`` without letting keys or server-echoed secrets into messages.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime

import openai
from openai.types.chat import ChatCompletionMessageParam

from core.errors import (
    ConfigError,
    LLMBadResponse,
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    LLMUnavailable,
)
from core.types import ChatMessage

__all__ = ["OpenAIChat"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers (vLLM, Ollama, llama.cpp) ignore the key, but the client insists on one.
PLACEHOLDER_KEY = "unused"
# A readiness probe must answer fast and must not sit in backoff.
PING_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0


class OpenAIChat:
    """Chat Completions streaming through the official ``openai`` client.

    Args:
        api_key: the secret key; may be None for a local OpenAI-compatible server.
        base_url: an OpenAI-compatible endpoint such as ``http://localhost:11434/v1``;
            None means api.openai.com.
        azure_endpoint: an Azure OpenAI resource (``https://NAME.openai.azure.com``); when
            set, ``model`` in ``stream`` is the deployment name.
        api_version: the Azure OpenAI API version; required with ``azure_endpoint``.
        timeout: seconds the client waits for any single read, so the longest silence
            allowed before the first token and between tokens; not a total deadline.
        max_retries: retries of 408/409/429/5xx and connection failures, with backoff.

    Raises:
        ConfigError: the values cannot describe a usable endpoint.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
    ) -> None:
        self._timeout = timeout
        client_timeout = openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
        # Every value is passed explicitly: left as None, the client would read OPENAI_* and
        # AZURE_OPENAI_* from the environment, and settings are read in one place only.
        self._client: openai.AsyncOpenAI
        if azure_endpoint:
            if not api_key:
                raise ConfigError("Azure OpenAI needs an API key", field="api_key")
            if not api_version:
                raise ConfigError("Azure OpenAI needs an API version", field="api_version")
            self._client = openai.AsyncAzureOpenAI(
                azure_endpoint=azure_endpoint,
                api_key=api_key,
                api_version=api_version,
                timeout=client_timeout,
                max_retries=max_retries,
            )
        else:
            if not api_key and not base_url:
                raise ConfigError("api.openai.com needs an API key", field="api_key")
            self._client = openai.AsyncOpenAI(
                api_key=api_key or PLACEHOLDER_KEY,
                base_url=base_url or OPENAI_BASE_URL,
                timeout=client_timeout,
                max_retries=max_retries,
            )

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str,
        temperature: float,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[str]:
        """Yield the answer as text deltas.

        Raises:
            LLMTimeout: no answer, or a silence longer than ``timeout``.
            LLMRateLimited: still 429 after the retries.
            LLMUnavailable: unreachable, 5xx after the retries, or the stream broke off.
            LLMBadResponse: a 4xx, or a stream we could not read.
        """
        finished = False
        try:
            body: dict[str, object] = {
                "model": model,
                "messages": [_to_openai_message(m) for m in messages],
                "temperature": temperature,
                "stream": True,
            }
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
            # Through the client's generic POST: it still adds the key or the Azure deployment
            # path, retries, times out and maps errors (error events too), but neither walks
            # every message through create()'s type transform nor builds a model per chunk,
            # which together cost more CPU than the rest of a turn (docs/benchmarks.md).
            chunks = await self._client.post(
                "/chat/completions",
                cast_to=object,
                body=body,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            # The context closes the HTTP response even when our caller stops early.
            async with chunks:
                async for chunk in chunks:
                    text, done = _read_chunk(chunk)
                    finished = finished or done
                    if text:
                        yield text
        except openai.APIError as error:
            raise _to_llm_error(error) from _safe_cause(error)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise LLMBadResponse(f"the model's stream could not be decoded: {type(error).__name__}") from None
        if not finished:
            raise LLMBadResponse("the model's stream ended before the answer was finished")

    async def ping(self) -> None:
        """Check that the endpoint answers, quickly and without retries.

        Raises:
            LLMError: a subclass saying why not.
        """
        client = self._client.with_options(timeout=min(self._timeout, PING_TIMEOUT), max_retries=0)
        try:
            await client.models.list()
        except openai.APIError as error:
            raise _to_llm_error(error) from _safe_cause(error)

    async def close(self) -> None:
        """Close the HTTP client and its connections."""
        await self._client.close()


def _to_openai_message(message: ChatMessage) -> ChatCompletionMessageParam:
    """One prompt message in the client's request shape."""
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _read_chunk(chunk: object) -> tuple[str, bool]:
    """The text of one streamed chunk (decoded JSON) and whether it ends the answer.

    Role-only, empty and usage chunks, and Azure's filter-result chunks without choices,
    carry no text. Chunks arrive as plain JSON, so shapes are checked.
    """
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(chunk, dict) or not isinstance(choices, list | None):
        raise LLMBadResponse("the model's stream held a chunk of an unknown shape")
    text: list[str] = []
    done = False
    for choice in choices or []:
        if not isinstance(choice, dict):
            raise LLMBadResponse("the model's stream held a chunk of an unknown shape")
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            text.append(content)
        elif content is not None:
            raise LLMBadResponse("the model's stream held content that is not text")
        done = done or choice.get("finish_reason") is not None
    return "".join(text), done


def _to_llm_error(error: openai.APIError) -> LLMError:
    """Our error for the client's, with a message safe to log.

    Server messages are left out: a 401 echoes the key that was sent.
    """
    if isinstance(error, openai.APITimeoutError):
        return LLMTimeout("the model did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return LLMUnavailable("the model endpoint could not be reached or closed the connection")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        detail = _detail(error)
        if status == 429:
            return LLMRateLimited(
                f"the model is rate limited (HTTP 429{detail})",
                retry_after=_retry_after(error.response.headers),
            )
        if status == 408:
            return LLMTimeout(f"the model endpoint timed out (HTTP 408{detail})")
        if status >= 500:
            return LLMUnavailable(f"the model endpoint failed (HTTP {status}{detail})")
        return LLMBadResponse(f"the model endpoint refused the request (HTTP {status}{detail})")
    # A mid-stream {"error": ...} event: the server gave up while generating.
    detail = _detail(error)
    if error.type == "server_error" or error.code == "server_error":
        return LLMUnavailable(f"the model failed while answering{detail}")
    return LLMBadResponse(f"the model sent an error while answering{detail}")


def _detail(error: openai.APIError) -> str:
    """Machine-readable parts of an error body, never its free text."""
    parts = [f"{name}={value}" for name, value in (("type", error.type), ("code", error.code)) if value]
    request_id = getattr(error, "request_id", None)
    if request_id:
        parts.append(f"request_id={request_id}")
    return f", {', '.join(parts)}" if parts else ""


def _safe_cause(error: openai.APIError) -> BaseException | None:
    # Keep transport causes (refused, reset, DNS) for the logs; other errors carry text from
    # the server, which may echo the key, so they are not chained.
    return error if isinstance(error, openai.APIConnectionError) else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms``, or ``Retry-After`` in seconds or as an HTTP date."""
    for name, unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * unit
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())
