"""``dari check``: is every configured part of the service usable, right now?

Each component gets one row: ok (True), failing (False) or not configured (None). Network
checks run concurrently and each is bounded by ``timeout``; nothing here changes remote state
(Slack ``auth.test``, a Bot Framework token, an LLM model list, a store PING).
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from pydantic import ValidationError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.server import build_llm, open_store
from adapters.settings import Settings
from core.errors import ConfigError, DariError
from core.persona import load_personas

__all__ = ["CheckResult", "failed", "format_table", "invalid_settings", "run_checks"]

Lang = Literal["ko", "en"]

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com"
LOGIN_URL = "https://login.microsoftonline.com"
_APP_TYPES = {"multitenant", "singletenant", "userassignedmsi"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of the table.

    Attributes:
        component: "settings", "bots", "llm", "store", "slack", "teams", "kakao" or "console".
        ok: True when usable, False when configured but failing, None when not configured.
        detail: what was found, in English.
        detail_ko: the same in Korean ("" to show ``detail``).
    """

    component: str
    ok: bool | None
    detail: str
    detail_ko: str = ""


def _row(component: str, ok: bool | None, en: str, ko: str = "") -> CheckResult:
    return CheckResult(component=component, ok=ok, detail=en, detail_ko=ko)


def invalid_settings(error: ValidationError) -> CheckResult:
    """The settings row when ``Settings()`` itself failed (the CLI catches that error)."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
    )
    return _row("settings", False, f"invalid: {problems}", f"잘못된 값이 있어요: {problems}")


def _check_settings(settings: Settings) -> CheckResult:
    problems: list[str] = []
    if settings.log_level.upper() not in logging.getLevelNamesMapping():
        problems.append(f"DARI_LOG_LEVEL {settings.log_level!r} is not a log level")
    if settings.azure_openai_endpoint and settings.azure_openai_api_key is None:
        problems.append("AZURE_OPENAI_ENDPOINT is set without AZURE_OPENAI_API_KEY")
    app_type = settings.microsoft_app_type.strip().lower()
    if app_type not in _APP_TYPES:
        problems.append("MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI")
    elif settings.microsoft_app_id:
        if app_type != "userassignedmsi" and settings.microsoft_app_password is None:
            problems.append("MicrosoftAppPassword is missing")
        if app_type != "multitenant" and not settings.microsoft_app_tenant_id:
            problems.append("MicrosoftAppTenantId is missing")
    if (settings.slack_bot_token is None) != (settings.slack_signing_secret is None):
        problems.append("Slack needs both SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
    token = settings.console_token
    if token is not None and len(token.get_secret_value()) < 16:
        problems.append("DARI_CONSOLE_TOKEN is shorter than 16 characters")
    if problems:
        text = "; ".join(problems)
        return _row("settings", False, text, f"고쳐야 할 설정이 있어요: {text}")
    return _row("settings", True, "valid", "올바른 값이에요")


def _check_bots(settings: Settings) -> CheckResult:
    try:
        personas = load_personas(settings.bots_dir)
    except ConfigError as error:
        return _row("bots", False, str(error))
    names = ", ".join(personas)
    return _row("bots", True, f"{len(personas)} bot(s): {names}", f"봇 {len(personas)}개: {names}")


async def _check_llm(settings: Settings, timeout: float) -> CheckResult:
    llm = build_llm(settings)
    if llm is None:
        return _row(
            "llm",
            None,
            "not configured: set OPENAI_API_KEY, OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT",
            "설정되지 않았어요: OPENAI_API_KEY, OPENAI_BASE_URL 또는 AZURE_OPENAI_ENDPOINT를 설정해 주세요",
        )
    where = settings.azure_openai_endpoint or settings.openai_base_url or "OpenAI"
    try:
        async with asyncio.timeout(timeout):
            await llm.ping()
    except (DariError, TimeoutError) as error:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return _row("llm", False, f"{where}: {text}", f"{where}에 연결하지 못했어요: {text}")
    finally:
        await llm.close()
    return _row("llm", True, f"{where} answers", f"{where} 응답해요")


async def _check_store(settings: Settings, timeout: float) -> CheckResult:
    try:
        async with asyncio.timeout(timeout):
            store, kind = await open_store(settings)
            try:
                await store.ping()
            finally:
                await store.close()
    except (DariError, OSError, TimeoutError) as error:
        kind = "redis" if settings.redis_url else "embedded sqlite"
        name = type(error).__name__
        return _row("store", False, f"{kind}: {name}", f"{kind}에 연결하지 못했어요: {name}")
    return _row("store", True, kind, f"{kind} 사용 가능")


async def _check_slack(settings: Settings, timeout: float) -> CheckResult:
    if settings.slack_bot_token is None:
        return _row("slack", None, "not configured", "설정되지 않았어요")
    app_token = settings.slack_app_token
    try:
        async with asyncio.timeout(timeout):
            client = AsyncWebClient(
                token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
            )
            identity = await client.auth_test()
            if app_token is not None:
                # Socket Mode: the app-level token must be able to open a connection URL.
                await client.apps_connections_open(app_token=app_token.get_secret_value())
    except SlackApiError as error:
        code = str(error.response.get("error", "error"))
        return _row("slack", False, f"Slack refused the token: {code}", f"Slack이 토큰을 거부했어요: {code}")
    except (aiohttp.ClientError, TimeoutError) as error:
        name = type(error).__name__
        return _row("slack", False, f"Slack unreachable: {name}", f"Slack에 연결하지 못했어요: {name}")
    if settings.slack_signing_secret is None:
        return _row("slack", False, "SLACK_SIGNING_SECRET is missing", "SLACK_SIGNING_SECRET이 없어요")
    team, user = identity.get("team", "?"), identity.get("user", "?")
    mode = ", Socket Mode" if app_token is not None else ""
    return _row("slack", True, f"team {team}, bot {user}{mode}", f"워크스페이스 {team}, 봇 {user}{mode}")


class _BotConfig:
    """The attribute bag botbuilder's credentials factory reads (names as the SDK spells them)."""

    def __init__(self, settings: Settings) -> None:
        password = settings.microsoft_app_password
        self.APP_ID = settings.microsoft_app_id
        self.APP_PASSWORD = password.get_secret_value() if password else ""
        self.APP_TYPE = settings.microsoft_app_type
        self.APP_TENANTID = settings.microsoft_app_tenant_id


async def _check_teams(settings: Settings, factory: Any, timeout: float) -> CheckResult:
    if not settings.microsoft_app_id:
        return _row(
            "teams",
            None,
            "not configured (MicrosoftAppId empty: local mode without authentication)",
            "설정되지 않았어요 (MicrosoftAppId가 없어 인증 없는 로컬 모드예요)",
        )
    tenant = settings.microsoft_app_tenant_id or "botframework.com"
    try:
        if factory is None:
            from botbuilder.integration.aiohttp import ConfigurationServiceClientCredentialFactory

            factory = ConfigurationServiceClientCredentialFactory(_BotConfig(settings))
        async with asyncio.timeout(timeout):
            credentials = await factory.create_credentials(
                settings.microsoft_app_id, BOT_FRAMEWORK_SCOPE, f"{LOGIN_URL}/{tenant}", True
            )
            token = await asyncio.to_thread(credentials.get_access_token)
    except PermissionError as error:  # the SDK's "Failed to get access token ... AADSTS..."
        text = str(error)[:300]
        return _row("teams", False, text, f"토큰을 받지 못했어요: {text}")
    except Exception as error:  # MSAL and the SDK raise bare Exceptions; also network errors
        name = type(error).__name__
        return _row(
            "teams", False, f"no Bot Framework token: {name}", f"Bot Framework 토큰을 받지 못했어요: {name}"
        )
    if not token:
        return _row("teams", False, "empty Bot Framework token", "Bot Framework 토큰이 비어 있어요")
    app = settings.microsoft_app_id
    return _row("teams", True, f"token issued for app {app}", f"앱 {app}의 토큰을 받았어요")


def _check_kakao(settings: Settings) -> CheckResult:
    if settings.kakao_skill_secret is None:
        return _row(
            "kakao",
            None,
            "open: no KAKAO_SKILL_SECRET, anyone who knows the URL can call the skill",
            "열려 있어요: KAKAO_SKILL_SECRET이 없어서 주소를 아는 누구나 스킬을 호출할 수 있어요",
        )
    return _row("kakao", True, "skill requests need the shared secret", "스킬 요청에 공유 비밀값이 필요해요")


def _check_console(settings: Settings) -> CheckResult:
    if settings.console_token is None:
        return _row(
            "console",
            None,
            "no DARI_CONSOLE_TOKEN: the console answers this machine only",
            "DARI_CONSOLE_TOKEN이 없어서 콘솔은 이 컴퓨터에서만 열려요",
        )
    return _row("console", True, "protected by DARI_CONSOLE_TOKEN", "DARI_CONSOLE_TOKEN으로 보호돼요")


async def run_checks(
    settings: Settings, *, teams_credentials_factory: Any = None, timeout: float = 10.0
) -> list[CheckResult]:
    """Check every component; network checks run concurrently.

    Args:
        settings: what to check.
        teams_credentials_factory: a botbuilder ``ServiceClientCredentialsFactory`` to use instead
            of the one built from settings (tests point it at a loopback token endpoint).
        timeout: seconds each network check may take.
    """
    remote = await asyncio.gather(
        _check_llm(settings, timeout),
        _check_store(settings, timeout),
        _check_slack(settings, timeout),
        _check_teams(settings, teams_credentials_factory, timeout),
    )
    local = [_check_settings(settings), _check_bots(settings)]
    return [*local, *remote, _check_kakao(settings), _check_console(settings)]


def failed(results: list[CheckResult]) -> bool:
    """True when something configured does not work (the CLI exits 1)."""
    return any(result.ok is False for result in results)


_TEXT = {
    "ko": {
        "header": ("구성 요소", "상태", "내용"),
        "names": {
            "settings": "설정",
            "bots": "봇 파일",
            "llm": "언어 모델",
            "store": "저장소",
            "slack": "Slack",
            "teams": "Teams",
            "kakao": "카카오톡",
            "console": "웹 콘솔",
        },
        "states": {True: "✅ 정상", False: "❌ 실패", None: "— 미설정"},
    },
    "en": {
        "header": ("Component", "State", "Detail"),
        "names": {"llm": "LLM", "bots": "Bot files", "console": "Web console"},
        "states": {True: "✅ ok", False: "❌ failing", None: "— not set"},
    },
}


def _width(text: str) -> int:
    # Hangul and emoji take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def format_table(results: list[CheckResult], lang: Lang = "ko") -> str:
    """An aligned text table with ✅ / ❌ / — marks, in Korean or English."""
    text: Any = _TEXT[lang]
    rows = [text["header"]]
    for r in results:
        name = text["names"].get(r.component, r.component.capitalize())
        detail = r.detail_ko if lang == "ko" and r.detail_ko else r.detail
        rows.append((name, text["states"][r.ok], detail))
    widths = [max(_width(row[i]) for row in rows) for i in range(2)]
    lines = [f"{_pad(a, widths[0])}  {_pad(b, widths[1])}  {c}".rstrip() for a, b, c in rows]
    lines.insert(1, "-" * (widths[0] + widths[1] + 4 + max(_width(row[2]) for row in rows)))
    return "\n".join(lines)
