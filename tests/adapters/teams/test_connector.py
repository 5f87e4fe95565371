"""The connector client against the Bot Connector stand-in: addressing, 429 and bounded retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapters.teams.connector import Connector, ConnectorError
from tests.support.botframework import BotConnector

THREAD = "19:6848757105754c8981c67612732d9aa7@thread.tacv2;messageid=1759881511856"


class FixedToken:
    def __init__(self, value: str | None) -> None:
        self.value = value

    async def authorization(self) -> str | None:
        return self.value


class Waits:
    """Records the waits between tries instead of sleeping them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(http: aiohttp.ClientSession, waits: Waits, *, token: str | None = "Bearer t") -> Connector:
    return Connector(session=lambda: http, tokens=FixedToken(token), attempts=4, backoff=0.5, sleep=waits)


async def test_a_reply_is_posted_to_the_thread_and_the_message(
    connector: BotConnector, http: aiohttp.ClientSession
) -> None:
    sent = await client(http, Waits()).send(
        connector.service_url, THREAD, {"type": "message", "text": "안녕하세요"}, reply_to="1759944781430"
    )

    (received,) = connector.received
    assert sent == "activity-1"
    assert received.conversation == THREAD, "the ;messageid= part keeps the reply in the thread"
    assert received.reply_to == "1759944781430"
    assert received.text == "안녕하세요"
    assert received.authorization == "Bearer t"


async def test_without_credentials_no_authorization_is_sent(
    connector: BotConnector, http: aiohttp.ClientSession
) -> None:
    await client(http, Waits(), token=None).send(connector.service_url, "a:1", {"type": "message"})

    assert connector.received[0].authorization == ""


async def test_429_waits_for_retry_after(connector: BotConnector, http: aiohttp.ClientSession) -> None:
    waits = Waits()
    connector.fail(429, retry_after="2")
    connector.fail(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # in the past: go now

    await client(http, waits).send(connector.service_url, "a:1", {"type": "message", "text": "x"})

    assert waits.seconds == [2.0, 0.0]
    assert connector.attempts == 3
    assert len(connector.received) == 1


@pytest.mark.parametrize("status", [412, 502, 504])
async def test_transient_failures_back_off_exponentially(
    connector: BotConnector, http: aiohttp.ClientSession, status: int
) -> None:
    waits = Waits()
    connector.fail(status, times=2)

    await client(http, waits).send(connector.service_url, "a:1", {"type": "message", "text": "x"})

    assert len(connector.received) == 1
    assert len(waits.seconds) == 2
    assert 0.25 <= waits.seconds[0] <= 0.5 and 0.5 <= waits.seconds[1] <= 1.0, "doubling, with jitter"


async def test_retries_are_bounded(connector: BotConnector, http: aiohttp.ClientSession) -> None:
    waits = Waits()
    connector.fail(502, times=10)

    with pytest.raises(ConnectorError) as raised:
        await client(http, waits).send(connector.service_url, "a:1", {"type": "message"})

    assert raised.value.status == 502
    assert connector.attempts == 4
    assert len(waits.seconds) == 3


async def test_a_refusal_is_not_retried(connector: BotConnector, http: aiohttp.ClientSession) -> None:
    waits = Waits()
    connector.fail(413, code="MessageSizeTooBig", message="Message size too big")

    with pytest.raises(ConnectorError) as raised:
        await client(http, waits).send(connector.service_url, "a:1", {"type": "message"})

    assert (raised.value.status, raised.value.code, raised.value.refused) == (413, "MessageSizeTooBig", True)
    assert connector.attempts == 1
    assert waits.seconds == []


async def test_an_unreachable_connector_is_retried_then_reported(http: aiohttp.ClientSession) -> None:
    waits = Waits()

    with pytest.raises(ConnectorError) as raised:
        await client(http, waits).send("http://127.0.0.1:9/amer/", "a:1", {"type": "message"})

    assert raised.value.status == 0
    assert len(waits.seconds) == 3
