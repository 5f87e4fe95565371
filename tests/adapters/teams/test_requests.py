"""Bad requests get a JSON 4xx, never a 5xx, and leave the door working."""

from __future__ import annotations

from typing import Any

import pytest

from tests.adapters.teams.conftest import Door, payload


async def raw_post(door: Door, data: bytes, content_type: str) -> tuple[int, Any]:
    async with door.http.post(door.url, data=data, headers={"Content-Type": content_type}) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"type": "message"', "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b"null", "application/json", 400),
        (b"type=message", "application/x-www-form-urlencoded", 415),
        ("\ud800".encode("utf-8", "surrogatepass"), "application/json", 400),
    ],
)
async def test_bodies_that_are_not_activities(
    door: Door, data: bytes, content_type: str, status: int
) -> None:
    got, body = await raw_post(door, data, content_type)

    assert got == status
    assert set(body["error"]) == {"code", "message"}


@pytest.mark.parametrize(
    "fields",
    [
        {"type": None},
        {"type": 7},
        {"conversation": None},
        {"conversation": "a:1"},
        {"conversation": {"id": 12}},
        {"from": None},
        {"recipient": {"name": "no id"}},
        {"id": 1485983408511},
        {"serviceUrl": None},
        {"serviceUrl": "ftp://example.com/"},
        {"text": ["hi"]},
        {"entities": {"type": "mention"}},
        {"channelData": "tenant"},
        {"timestamp": "yesterday"},
    ],
)
async def test_activities_with_wrong_fields(door: Door, fields: dict[str, Any]) -> None:
    activity = payload("personal_message", door.connector)
    activity.update(fields)

    status, body = await door.post(activity)

    assert status == 400
    assert body["error"]["code"] == "bad_request"
    assert door.connector.received == []


async def test_the_door_still_answers_after_bad_requests(door: Door) -> None:
    await raw_post(door, b"{", "application/json")
    await door.post({"type": "message"})

    status, _ = await door.post(payload("personal_message", door.connector))
    await door.settle()

    assert status == 200
    assert len(door.connector.messages) == 1


async def test_other_activity_types_are_acknowledged(door: Door) -> None:
    status, _ = await door.post(payload("personal_message", door.connector, type="messageReaction"))

    assert status == 200
    assert door.connector.received == []
