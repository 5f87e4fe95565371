"""A small Bot Connector client: POST activities to a conversation, with Teams' retry rules.

Teams throttles per bot and thread (HTTP 429 with ``Retry-After``) and asks bots to retry
412, 502 and 504 with exponential backoff and jitter. The SDK's own client retries other
codes through msrest and sends with ``requests`` on a thread pool, so dari sends here instead,
on the service's shared aiohttp session.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from core.errors import DariError

__all__ = ["Connector", "ConnectorError", "TokenSource"]

log = logging.getLogger(__name__)

# 0: the connection could not be opened (nothing was sent).
_RETRIED = frozenset({0, 412, 429, 502, 504})
_MAX_RETRY_AFTER = 60.0


class ConnectorError(DariError):
    """The Bot Connector refused an activity or could not be reached.

    Attributes:
        status: the HTTP status, or 0 when no answer came (network, token).
        code: the connector's error code (``ContentStreamNotAllowed``, ``MessageSizeTooBig``), or "".
        detail: the connector's error message, or "".
    """

    def __init__(self, status: int, code: str = "", detail: str = "") -> None:
        super().__init__(f"bot connector answered {status} {code}: {detail}".strip())
        self.status = status
        self.code = code
        self.detail = detail

    @property
    def refused(self) -> bool:
        """True for a 4xx: sending the same activity again will not help."""
        return 400 <= self.status < 500


class TokenSource(Protocol):
    async def authorization(self) -> str | None:
        """The ``Authorization`` header value for the connector, or None without credentials."""
        ...


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}


def _error(status: int, body: object) -> ConnectorError:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ConnectorError(status, str(error.get("code") or ""), str(error.get("message") or ""))
    return ConnectorError(status)


class Connector:
    """Sends activities; retries 429 after ``Retry-After`` and 412/502/504 with backoff.

    Args:
        session: returns the shared HTTP session (read at call time: it is opened at start-up).
        tokens: the bearer token for the connector.
        attempts: at most this many tries per activity.
        backoff: the first backoff in seconds; doubled per try, with jitter, capped at 30 s.
        sleep: waits between tries (tests pass a recorder).
    """

    def __init__(
        self,
        *,
        session: Callable[[], aiohttp.ClientSession],
        tokens: TokenSource,
        attempts: int = 5,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._attempts = max(1, attempts)
        self._backoff = backoff
        self._sleep = sleep

    def _delay(self, attempt: int) -> float:
        return float(min(30.0, self._backoff * 2**attempt) * random.uniform(0.5, 1.0))

    async def send(
        self, service_url: str, conversation_id: str, activity: Mapping[str, Any], *, reply_to: str = ""
    ) -> str:
        """POST one activity; returns the id the connector gave it ("" when it gave none).

        Raises:
            ConnectorError: a 4xx, or a failure that outlasted every retry.
        """
        url = f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}/activities"
        if reply_to:
            url += f"/{quote(reply_to, safe='')}"
        for attempt in range(self._attempts):
            headers = {"Content-Type": "application/json"}
            if (authorization := await self._tokens.authorization()) is not None:
                headers["Authorization"] = authorization
            try:
                async with self._session().post(url, json=dict(activity), headers=headers) as response:
                    status, retry_after = response.status, response.headers.get("Retry-After")
                    body = _json(await response.read())
            except aiohttp.ClientConnectorError as error:
                # Nothing was sent, so trying again cannot post the message twice.
                status, body, retry_after = 0, {"error": {"message": str(error)}}, None
            except (aiohttp.ClientError, TimeoutError) as error:
                raise ConnectorError(0, type(error).__name__, str(error)) from error
            if 200 <= status < 300:
                return str(body.get("id") or "") if isinstance(body, dict) else ""
            if status not in _RETRIED:
                raise _error(status, body)
            if attempt + 1 == self._attempts:
                break
            wait = _retry_after(retry_after) if status == 429 else None
            wait = self._delay(attempt) if wait is None else wait
            log.info("bot connector %s, retrying in %.2fs", status or "unreachable", wait)
            await self._sleep(wait)
        raise _error(status, body)
