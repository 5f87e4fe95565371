"""Bot Framework JWTs over HTTP, signed by a key the test makes and publishes on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.adapters.teams.conftest import Door, bot_app_id, payload, run_door
from tests.support.botframework import ACCESS_TOKEN, BotConnector, TokenIssuer
from tests.support.fakes import ScriptedLLM


@pytest.fixture
async def issuer() -> AsyncIterator[TokenIssuer]:
    async with TokenIssuer() as running:
        yield running


@pytest.fixture
def activity(connector: BotConnector) -> dict[str, Any]:
    return payload("channel_thread_mention", connector, text="<at>ridotest</at> 인증 확인")


@pytest.fixture
async def secured(
    connector: BotConnector, llm: ScriptedLLM, issuer: TokenIssuer, activity: dict[str, Any]
) -> AsyncIterator[Door]:
    async with run_door(connector, llm, app_id=bot_app_id(activity), issuer=issuer) as door:
        yield door


async def test_a_valid_token_is_accepted_and_replies_carry_the_bot_token(
    secured: Door, issuer: TokenIssuer, activity: dict[str, Any]
) -> None:
    app_id = bot_app_id(activity)
    token = issuer.token(audience=app_id, service_url=activity["serviceUrl"])

    status, _ = await secured.post(activity, token=token)
    await secured.settle()
    status_again, _ = await secured.post({**activity, "id": "second"}, token=token)
    await secured.settle()

    assert (status, status_again) == (200, 200)
    assert len(secured.connector.messages) == 2
    assert {r.authorization for r in secured.connector.received} == {f"Bearer {ACCESS_TOKEN}"}
    (request,) = secured.connector.token_requests
    assert request["client_id"] == app_id, "one token for every reply: the credentials are reused"
    assert request["scope"] == "https://api.botframework.com/.default"
    assert issuer.metadata_requests == 1, "signing keys are cached"


BadToken = Callable[[TokenIssuer, str, str], str]

BAD_TOKENS: dict[str, BadToken] = {
    "wrong audience": lambda i, app, url: i.token(
        audience="00000000-0000-0000-0000-000000000000", service_url=url
    ),
    "expired": lambda i, app, url: i.token(audience=app, service_url=url, lifetime=-600),
    "unsigned": lambda i, app, url: i.unsigned(audience=app, service_url=url),
    "wrong issuer": lambda i, app, url: i.token(
        audience=app, service_url=url, issuer="https://evil.example.com"
    ),
    "forged signature": lambda i, app, url: i.token(
        audience=app, service_url=url, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ),
    "another service url": lambda i, app, url: i.token(audience=app, service_url="https://evil.example.com/"),
    "not a jwt": lambda i, app, url: "not-a-jwt",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_get_401(
    secured: Door, issuer: TokenIssuer, activity: dict[str, Any], case: str
) -> None:
    token = BAD_TOKENS[case](issuer, bot_app_id(activity), activity["serviceUrl"])

    status, body = await secured.post(activity, token=token)
    await secured.settle()

    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert secured.connector.received == []
    assert secured.llm.calls == []


async def test_no_header_gets_401(secured: Door, activity: dict[str, Any]) -> None:
    status, body = await secured.post(activity)

    assert status == 401
    assert body == {"error": {"code": "unauthorized", "message": "a valid Bot Framework token is required"}}


async def test_a_key_not_endorsed_for_teams_is_refused(
    connector: BotConnector, llm: ScriptedLLM, activity: dict[str, Any]
) -> None:
    app_id = bot_app_id(activity)
    async with (
        TokenIssuer(endorsements=("skype",)) as issuer,
        run_door(connector, llm, app_id=app_id, issuer=issuer) as door,
    ):
        status, _ = await door.post(
            activity, token=issuer.token(audience=app_id, service_url=activity["serviceUrl"])
        )

    assert status == 401


async def test_unreachable_signing_keys_are_a_503(
    connector: BotConnector, llm: ScriptedLLM, activity: dict[str, Any]
) -> None:
    app_id = bot_app_id(activity)
    async with TokenIssuer() as issuer:
        token = issuer.token(audience=app_id, service_url=activity["serviceUrl"])
    async with run_door(connector, llm, app_id=app_id, issuer=issuer) as door:  # issuer is closed now
        status, body = await door.post(activity, token=token)

    assert status == 503
    assert body["error"]["code"] == "unavailable"


async def test_slow_signing_keys_are_a_503_in_time(
    connector: BotConnector, llm: ScriptedLLM, activity: dict[str, Any]
) -> None:
    app_id = bot_app_id(activity)
    async with TokenIssuer() as issuer:
        issuer.hold = asyncio.Event()  # the key endpoint hangs until the request has its answer
        async with run_door(connector, llm, app_id=app_id, issuer=issuer, key_timeout=0.2) as door:
            token = issuer.token(audience=app_id, service_url=activity["serviceUrl"])
            status, body = await door.post(activity, token=token)
        issuer.hold.set()

    assert status == 503
    assert body["error"]["message"] == "cannot verify the token right now"


async def test_local_mode_needs_no_token(door: Door, activity: dict[str, Any]) -> None:
    status, _ = await door.post(activity, token="anything at all")
    await door.settle()

    assert status == 200
    assert door.connector.messages[0].authorization == ""
