"""adapters.slack.names: users.info lookups, cached per workspace, bounded, expiring."""

from __future__ import annotations

import aiohttp

from adapters.slack.client import web_client
from adapters.slack.names import DisplayNames, display_name
from tests.support.slack_api import slack_api


def test_display_name_prefers_what_people_see() -> None:
    assert (
        display_name({"name": "minsu", "profile": {"display_name": "민수", "real_name": "김민수"}}) == "민수"
    )
    assert (
        display_name({"name": "minsu", "profile": {"display_name": " ", "real_name": "김민수"}}) == "김민수"
    )
    assert display_name({"name": "minsu", "real_name": "Minsu Kim"}) == "Minsu Kim"
    assert display_name({"name": "minsu", "profile": "broken"}) == "minsu"
    assert display_name({}) == ""


async def test_names_are_cached_bounded_and_expire() -> None:
    now = [0.0]
    async with slack_api() as api, aiohttp.ClientSession() as session:
        for user, name in (("U1", "김민수"), ("U2", "이지은"), ("U3", "박서준")):
            api.users[user] = {"id": user, "name": user.lower(), "profile": {"display_name": name}}
        client = web_client(token="xoxb-test", base_url=api.url, session=session)
        names = DisplayNames(client=client, max_entries=2, ttl=60, clock=lambda: now[0])

        assert await names.get("T1", "U1") == "김민수"
        assert await names.get("T1", "U1") == "김민수"
        assert len(api.called("users.info")) == 1

        assert await names.get("T1", "U2") == "이지은"
        assert await names.get("T1", "U3") == "박서준"
        assert len(names) == 2  # U1, the least recently used, made room
        assert await names.get("T1", "U1") == "김민수"
        assert len(api.called("users.info")) == 4

        now[0] = 61.0
        assert await names.get("T1", "U1") == "김민수"
        assert len(api.called("users.info")) == 5


async def test_a_failed_lookup_is_empty_and_not_remembered() -> None:
    async with slack_api() as api, aiohttp.ClientSession() as session:
        names = DisplayNames(client=web_client(token="xoxb-test", base_url=api.url, session=session))
        assert await names.get("T1", "U404") == ""
        api.users["U404"] = {"id": "U404", "name": "late"}
        assert await names.get("T1", "U404") == "late"
