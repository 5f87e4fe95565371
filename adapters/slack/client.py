"""The Slack Web API client: one per process, on our own aiohttp session."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["FAILURES", "web_client"]

# What a Web API call can raise once its retries are spent.
FAILURES: tuple[type[Exception], ...] = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError)


def web_client(
    *, token: str, base_url: str, session: aiohttp.ClientSession, rate_limit_retries: int = 3
) -> AsyncWebClient:
    """A client that waits out 429s as Slack's ``Retry-After`` says, and retries lost connections."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        logger=logging.getLogger("adapters.slack.web"),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        ],
    )
