"""Bot Framework authentication: inbound JWT validation and outbound connector tokens.

Both come from botbuilder's ``ConfigurationBotFrameworkAuthentication``, configured from our
settings. dari always gives it the full set of cloud endpoints (``BotFrameworkCloud``), so
production and tests run the same validation code with only the URLs changed.

The SDK fetches OpenID metadata and signing keys with blocking ``requests`` calls inside its
coroutines, and MSAL fetches tokens the same way; both therefore run on worker threads, so a
key refresh never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)

from adapters.settings import Settings
from adapters.teams.connector import ConnectorError
from core.errors import DariError

__all__ = [
    "KEY_FETCH_TIMEOUT",
    "PUBLIC_CLOUD",
    "Authenticator",
    "BotFrameworkCloud",
    "CredentialTokens",
    "Unauthorized",
    "Unverifiable",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BotFrameworkCloud:
    """The Bot Framework endpoints dari trusts and calls (the public Azure cloud by default).

    Attributes:
        openid_metadata_url: where the channel's token signing keys are published.
        token_issuer: the ``iss`` of tokens from the channel.
        emulator_metadata_url: signing keys of Bot Framework Emulator / Entra-issued tokens.
        oauth_scope: the audience of the bot's own tokens for the connector.
        login_url: the Entra authority prefix for those tokens (the tenant is appended).
        oauth_api_url: the Bot Framework token service (user sign-in; unused by dari).
        caller_id: the caller id the SDK stamps on activities from this cloud.
    """

    openid_metadata_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    token_issuer: str = "https://api.botframework.com"
    emulator_metadata_url: str = (
        "https://login.microsoftonline.com/botframework.com/v2.0/.well-known/openid-configuration"
    )
    oauth_scope: str = "https://api.botframework.com"
    login_url: str = "https://login.microsoftonline.com"
    oauth_api_url: str = "https://api.botframework.com"
    caller_id: str = "urn:botframework:azure"


PUBLIC_CLOUD = BotFrameworkCloud()


# Bot Framework wants the HTTP response within 15 s; key fetching must leave room for the answer.
KEY_FETCH_TIMEOUT = 5.0
TOKEN_TIMEOUT = 30.0  # an answer waits at most this long for the bot's own token


class Unauthorized(DariError):
    """The request's Bot Framework token is missing or invalid (HTTP 401)."""


class Unverifiable(DariError):
    """The token could not be checked now: the signing keys could not be fetched (HTTP 503)."""


class _Configuration:
    """The attribute bag botbuilder reads its configuration from (names as the SDK spells them)."""

    def __init__(self, settings: Settings, cloud: BotFrameworkCloud) -> None:
        password = settings.microsoft_app_password
        tenant = settings.microsoft_app_tenant_id
        self.APP_ID = settings.microsoft_app_id
        self.APP_PASSWORD = password.get_secret_value() if password else ""
        self.APP_TYPE = settings.microsoft_app_type
        self.APP_TENANTID = tenant
        self.VALIDATE_AUTHORITY = True
        self.TO_CHANNEL_FROM_BOT_LOGIN_URL = f"{cloud.login_url}/{tenant or 'botframework.com'}"
        self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = cloud.oauth_scope
        self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = cloud.token_issuer
        self.OAUTH_URL = cloud.oauth_api_url
        self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = cloud.openid_metadata_url
        self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = cloud.emulator_metadata_url
        self.CALLER_ID = cloud.caller_id


def _authenticate_blocking(authentication: Any, activity: Any, header: str | None) -> Any:
    try:
        return asyncio.run(authentication.authenticate_request(activity, header))
    except PermissionError as error:  # before OSError: PermissionError is one
        raise Unauthorized(str(error) or "invalid token") from None
    except OSError as error:  # requests' errors are OSErrors: the key endpoint is unreachable
        raise Unverifiable(type(error).__name__) from None
    except Exception as error:
        # The SDK signals bad tokens with PyJWT errors, bare Exceptions (endorsements) and
        # IndexError (unknown key id): all of them mean the token is not acceptable.
        raise Unauthorized(f"{type(error).__name__}: {error}") from None


class Authenticator:
    """Validates inbound requests; owns the SDK authentication object and credentials factory.

    Args:
        settings: the app id, password, type and tenant.
        cloud: the endpoints to trust and call.
        credentials_factory: an SDK ``ServiceClientCredentialsFactory`` replacing the one built
            from settings (tests use one that fetches tokens from a loopback endpoint).
        key_timeout: how long validation may wait for the signing keys before answering 503.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        cloud: BotFrameworkCloud = PUBLIC_CLOUD,
        credentials_factory: Any = None,
        key_timeout: float = KEY_FETCH_TIMEOUT,
    ) -> None:
        configuration = _Configuration(settings, cloud)
        self.key_timeout = key_timeout
        self.app_id = settings.microsoft_app_id
        self.cloud = cloud
        self.credentials_factory: Any = credentials_factory or ConfigurationServiceClientCredentialFactory(
            configuration
        )
        self.sdk: Any = ConfigurationBotFrameworkAuthentication(
            configuration, credentials_factory=self.credentials_factory
        )
        self.login_url: str = configuration.TO_CHANNEL_FROM_BOT_LOGIN_URL

    @property
    def enabled(self) -> bool:
        return bool(self.app_id)

    async def authenticate(self, activity: Any, header: str | None) -> Any:
        """The SDK's ``AuthenticateRequestResult`` for a request.

        Raises:
            Unauthorized: the token is missing (with an app id set) or invalid.
            Unverifiable: the signing keys could not be fetched.
        """
        # Local mode ignores any header; with an app id, "no header" must reach the SDK as None.
        header = (header or None) if self.enabled else None
        try:
            async with asyncio.timeout(self.key_timeout):
                return await asyncio.to_thread(_authenticate_blocking, self.sdk, activity, header)
        except TimeoutError:
            # The SDK fetches keys without a timeout; answer in time and let Teams retry.
            raise Unverifiable("the signing keys did not arrive in time") from None


class CredentialTokens:
    """Bearer tokens for the connector from the SDK credentials, created once and reused.

    MSAL caches and refreshes the token inside the credentials object; a fresh object per turn
    (what the SDK does) would ask Entra for a new token on every reply.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator
        self._credentials: Any = None

    async def authorization(self) -> str | None:
        if not self._auth.enabled:
            return None
        try:
            if self._credentials is None:
                self._credentials = await self._auth.credentials_factory.create_credentials(
                    self._auth.app_id, self._auth.cloud.oauth_scope, self._auth.login_url, True
                )
            async with asyncio.timeout(TOKEN_TIMEOUT):
                token = await asyncio.to_thread(self._credentials.get_access_token)
        except Exception as error:  # MSAL and the SDK raise bare Exceptions; also TimeoutError
            log.error("no token for the bot connector: %s", type(error).__name__)
            raise ConnectorError(0, "token", type(error).__name__) from error
        return f"Bearer {token}"
