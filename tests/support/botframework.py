"""Bot Framework on loopback for tests: a Bot Connector stand-in and a JWT issuer.

``BotConnector`` records what the bot sends to ``/v3/conversations/{id}/activities[/{replyToId}]``,
answers like Teams (201 ``{"id"}`` for messages and stream starts, 202 ``{}`` for stream updates),
fails on demand (429 + ``Retry-After``, 412, 502, refused streaming) and serves the bot's tokens.

``TokenIssuer`` signs tokens with an RSA key made for the test and publishes the key through an
OpenID metadata document and a JWKS endpoint, like ``login.botframework.com`` does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Self

import jwt
from aiohttp import web
from botframework.connector.auth import AppCredentials
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = [
    "ACCESS_TOKEN",
    "BotConnector",
    "Received",
    "StandInCredentialsFactory",
    "TokenIssuer",
    "stream_info",
]

ACCESS_TOKEN = "stand-in-connector-token"
# The 403 for anything sent on a finished stream (Teams streaming docs' error table; an older
# version of the page says "on a already completed").
ALREADY_COMPLETED = "Content stream is not allowed on an already completed streamed message"


@dataclass(frozen=True, slots=True)
class Received:
    """One activity the bot sent to the connector."""

    conversation: str
    reply_to: str
    body: dict[str, Any]
    authorization: str

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")


def stream_info(body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``streaminfo`` entity of an activity (older clients mirrored it in channelData)."""
    for entity in body.get("entities") or ():
        if entity.get("type") == "streaminfo":
            return dict(entity)
    data = body.get("channelData") or {}
    return dict(data) if "streamType" in data else None


class _Server:
    """An aiohttp app on 127.0.0.1 with a free port, as an async context manager."""

    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class _Failure(NamedTuple):
    status: int
    retry_after: str | None
    code: str
    message: str
    when: Callable[[dict[str, Any]], bool]


class BotConnector(_Server):
    """The Bot Connector stand-in. ``service_url`` goes into the activities tests post.

    Attributes:
        received: every activity accepted, in arrival order.
        attempts: every POST of an activity, failed ones included.
        token_requests: the form of every token request.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []
        self.attempts = 0
        self.token_requests: list[dict[str, str]] = []
        self._failures: list[_Failure] = []
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._completed: set[str] = set()  # streams closed by their final message
        self.app.router.add_post("/amer/v3/conversations/{conversation}/activities", self._activity)
        self.app.router.add_post(
            "/amer/v3/conversations/{conversation}/activities/{reply_to}", self._activity
        )
        self.app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)

    @property
    def service_url(self) -> str:
        return f"{self.base}/amer/"

    @property
    def token_url(self) -> str:
        return f"{self.base}/botframework.com/oauth2/v2.0/token"

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        code: str = "",
        message: str = "scripted failure",
        when: Callable[[dict[str, Any]], bool] = lambda body: True,
    ) -> None:
        """Answer the next ``times`` matching activities with ``status`` (they are not recorded)."""
        self._failures.extend(_Failure(status, retry_after, code, message, when) for _ in range(times))

    def refuse_streaming(self, status: int = 403, *, code: str = "BadArgument") -> None:
        """Refuse every streaming activity from now on, as a client without streaming would."""

        def streaming(body: dict[str, Any]) -> bool:
            return str((stream_info(body) or {}).get("streamType", "final")) != "final"

        self.fail(status, times=1000, code=code, message="streaming is not supported", when=streaming)

    def of_type(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.type == kind]

    @property
    def messages(self) -> list[Received]:
        return self.of_type("message")

    async def wait_for(self, count: int, *, kind: str = "message", timeout: float = 5.0) -> list[Received]:
        """Wait until at least ``count`` activities of ``kind`` arrived; returns them."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.of_type(kind)) >= count)
        return self.of_type(kind)

    async def _activity(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.attempts += 1
        for failure in self._failures:
            if failure.when(body):
                self._failures.remove(failure)
                headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
                error = {"error": {"code": failure.code, "message": failure.message}}
                return web.json_response(error, status=failure.status, headers=headers)
        info = stream_info(body) or {}
        stream = str(info.get("streamId") or "")
        if stream in self._completed:
            # Teams' answer to anything sent on a stream after its final message.
            error = {"error": {"code": "ContentStreamNotAllowed", "message": ALREADY_COMPLETED}}
            return web.json_response(error, status=403)
        match, authorization = request.match_info, request.headers.get("Authorization", "")
        received = Received(match["conversation"], match.get("reply_to", ""), body, authorization)
        async with self._changed:
            self.received.append(received)
            self._changed.notify_all()
        if stream and info.get("streamType") == "final":
            self._completed.add(stream)
        elif stream:
            return web.json_response({}, status=202)
        return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests.append({k: str(v) for k, v in form.items()})
        return web.json_response({"token_type": "Bearer", "expires_in": 3600, "access_token": ACCESS_TOKEN})


class _LoopbackCredentials(AppCredentials):  # type: ignore[misc]  # the SDK is untyped
    """Client-credentials tokens from the stand-in token endpoint (never from Entra)."""

    def __init__(self, app_id: str, password: str, token_url: str, scope: str) -> None:
        super().__init__(app_id=app_id, oauth_scope=scope)
        self._password = password
        self._token_url = token_url
        self._token = ""

    def get_access_token(self, force_refresh: bool = False) -> str:
        # Cached like MSAL caches it: one token request per credentials object.
        if not self._token or force_refresh:
            self._token = self._fetch()
        return self._token

    def _fetch(self) -> str:
        grant = {"grant_type": "client_credentials", "client_id": self.microsoft_app_id}
        grant |= {"client_secret": self._password, "scope": f"{self.oauth_scope}/.default"}
        form = urllib.parse.urlencode(grant).encode()
        with urllib.request.urlopen(self._token_url, data=form, timeout=5) as response:
            return str(json.load(response)["access_token"])


class StandInCredentialsFactory:
    """An SDK ``ServiceClientCredentialsFactory`` whose credentials use the stand-in token endpoint."""

    def __init__(self, *, app_id: str, password: str, token_url: str) -> None:
        self.app_id = app_id
        self._password = password
        self._token_url = token_url

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> AppCredentials:
        return _LoopbackCredentials(app_id, self._password, self._token_url, oauth_scope)


class TokenIssuer(_Server):
    """Signs Bot Framework tokens and publishes its key (OpenID metadata + JWKS) on loopback."""

    def __init__(
        self, *, issuer: str = "https://api.botframework.com", endorsements: tuple[str, ...] = ("msteams",)
    ) -> None:
        super().__init__()
        self.issuer = issuer
        self.kid = "test-key-1"
        self.endorsements = endorsements
        self.metadata_requests = 0
        self.hold: asyncio.Event | None = None  # when set, metadata requests wait for it
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        # botbuilder caches signing keys per metadata URL for a day, process-wide: a fresh path
        # per issuer keeps a later test on a reused port from seeing this test's key.
        self._path = f"/{uuid.uuid4().hex}/v1/.well-known"
        self.app.router.add_get(f"{self._path}/openidconfiguration", self._metadata)
        self.app.router.add_get(f"{self._path}/keys", self._keys)

    @property
    def metadata_url(self) -> str:
        return f"{self.base}{self._path}/openidconfiguration"

    def _claims(self, audience: str, service_url: str, issuer: str | None, lifetime: float) -> dict[str, Any]:
        now = int(time.time())
        iss = issuer or self.issuer
        return {
            "iss": iss,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": now - 60,
            "exp": now + lifetime,
        }

    def token(
        self,
        *,
        audience: str,
        service_url: str,
        issuer: str | None = None,
        lifetime: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """A signed channel token; ``key`` signs with another key (a forged signature)."""
        claims = self._claims(audience, service_url, issuer, lifetime)
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def unsigned(self, *, audience: str, service_url: str) -> str:
        """The same claims with ``alg: none`` and no signature."""
        claims = self._claims(audience, service_url, None, 3600)
        return jwt.encode(claims, "", algorithm=None, headers={"kid": self.kid})

    async def _metadata(self, request: web.Request) -> web.Response:
        self.metadata_requests += 1
        if self.hold is not None:
            await self.hold.wait()
        keys = f"{self.base}{self._path}/keys"
        algorithms = ["RS256"]
        return web.json_response(
            {"issuer": self.issuer, "jwks_uri": keys, "id_token_signing_alg_values_supported": algorithms}
        )

    async def _keys(self, request: web.Request) -> web.Response:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update(use="sig", kid=self.kid, endorsements=list(self.endorsements))
        return web.json_response({"keys": [jwk]})
