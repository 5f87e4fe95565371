"""Display names for group prompts: users.info, cached per workspace in a bounded LRU."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.client import FAILURES

__all__ = ["DisplayNames", "display_name"]

log = logging.getLogger(__name__)


def display_name(user: Mapping[str, Any]) -> str:
    """The name people see in Slack: display name, else real name, else the handle."""
    profile = user.get("profile")
    profile = profile if isinstance(profile, Mapping) else {}
    for value in (
        profile.get("display_name"),
        profile.get("real_name"),
        user.get("real_name"),
        user.get("name"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


class DisplayNames:
    """``users.info`` lookups, remembered for ``ttl`` seconds, at most ``max_entries`` of them.

    A failed lookup yields "" (the prompt then shows the user id) and is not remembered.
    """

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        max_entries: int = 2048,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._max_entries = max_entries
        self._ttl = ttl
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    async def get(self, tenant: str, user: str) -> str:
        key = (tenant, user)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            self._cache.move_to_end(key)
            return hit[1]
        try:
            response = await self._client.users_info(user=user)
        except FAILURES as error:
            answer = error.response.data if isinstance(error, SlackApiError) else None
            reason = answer.get("error") if isinstance(answer, dict) else type(error).__name__
            log.warning("users.info failed: %s", reason)
            return ""
        found = response.get("user")
        name = display_name(found) if isinstance(found, Mapping) else ""
        self._cache[key] = (self._clock() + self._ttl, name)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return name
