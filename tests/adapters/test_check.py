"""`dari check` logic: every component's state with and without configuration, over real wires."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from adapters.check import CheckResult, failed, format_table, invalid_settings, run_checks
from tests.support.botframework import BotConnector, StandInCredentialsFactory
from tests.support.openai_server import FakeOpenAI
from tests.support.service import IsolatedSettings

APP_ID = "00000000-0000-0000-0000-0000000000aa"


class SlackStandIn:
    """Answers auth.test and apps.connections.open like Slack, or refuses them with ``error``."""

    def __init__(self, *, error: str = "") -> None:
        self.error = error
        self.calls: list[tuple[str, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append((method, request.headers.get("Authorization", "")))
        if self.error:
            return web.json_response({"ok": False, "error": self.error})
        if method == "apps.connections.open":
            return web.json_response({"ok": True, "url": "wss://example.invalid/link"})
        return web.json_response({"ok": True, "team": "다리 테스트", "user": "dari", "team_id": "T1"})

    async def __aenter__(self) -> SlackStandIn:
        app = web.Application()
        app.router.add_post("/api/{method}", self._method)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/api/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def connector() -> AsyncIterator[BotConnector]:
    async with BotConnector() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def configured(**values: Any) -> IsolatedSettings:
    # Secrets as plain strings, as they come from the environment.
    return IsolatedSettings(**values)


def states(results: list[CheckResult]) -> dict[str, bool | None]:
    return {r.component: r.ok for r in results}


async def test_without_configuration_only_the_local_parts_are_checked(tmp_path: Path) -> None:
    results = await run_checks(IsolatedSettings(data_dir=tmp_path))
    assert states(results) == {
        "settings": True,
        "bots": True,
        "llm": None,
        "store": True,
        "slack": None,
        "teams": None,
        "kakao": None,
        "console": None,
    }
    assert not failed(results)
    assert "default" in next(r.detail for r in results if r.component == "bots")


async def test_everything_configured_and_reachable(
    tmp_path: Path, redis_url: str, fake_openai: FakeOpenAI, connector: BotConnector
) -> None:
    async with SlackStandIn() as slack:
        settings = configured(
            data_dir=tmp_path,
            openai_base_url=fake_openai.base_url,
            redis_url=redis_url,
            slack_bot_token="xoxb-test-token",
            slack_signing_secret="signing-secret",
            slack_app_token="xapp-test-token",
            slack_api_url=slack.url,
            microsoft_app_id=APP_ID,
            microsoft_app_password="app-password",
            kakao_skill_secret="kakao-secret",
            console_token="console-token-long-enough",
        )
        factory = StandInCredentialsFactory(
            app_id=APP_ID, password="app-password", token_url=connector.token_url
        )
        results = await run_checks(settings, teams_credentials_factory=factory)
    assert all(r.ok is True for r in results), results
    assert [m for m, _ in slack.calls] == ["auth.test", "apps.connections.open"]
    assert slack.calls[0][1] == "Bearer xoxb-test-token" and slack.calls[1][1] == "Bearer xapp-test-token"
    assert connector.token_requests[0]["client_id"] == APP_ID
    assert [c.path for c in fake_openai.calls] == ["/v1/models"]
    detail = {r.component: r.detail for r in results}
    assert detail["store"] == "redis" and "다리 테스트" in detail["slack"]


async def test_configured_but_failing_parts_are_reported(
    tmp_path: Path, fake_openai: FakeOpenAI, connector: BotConnector
) -> None:
    fake_openai.api_key = "the-right-key"
    async with SlackStandIn(error="invalid_auth") as slack:
        settings = configured(
            data_dir=tmp_path,
            openai_base_url=fake_openai.base_url,
            openai_api_key="a-wrong-key",
            redis_url=f"redis://127.0.0.1:{closed_port()}/0",
            slack_bot_token="xoxb-revoked",
            slack_signing_secret="signing-secret",
            slack_api_url=slack.url,
            microsoft_app_id=APP_ID,
            microsoft_app_password="app-password",
            console_token="short",
        )
        factory = StandInCredentialsFactory(
            app_id=APP_ID, password="app-password", token_url=connector.base + "/no-such-tenant"
        )
        results = await run_checks(settings, teams_credentials_factory=factory, timeout=5.0)
    got = states(results)
    assert got == {
        "settings": False,
        "bots": True,
        "llm": False,
        "store": False,
        "slack": False,
        "teams": False,
        "kakao": None,
        "console": True,
    }
    assert failed(results)
    detail = {r.component: r.detail for r in results}
    assert "invalid_auth" in detail["slack"]
    assert "DARI_CONSOLE_TOKEN" in detail["settings"]
    assert "HTTP 401" in detail["llm"] and "a-wrong-key" not in detail["llm"]
    assert "app-password" not in format_table(results, "en")


async def test_broken_bot_files_and_invalid_settings_fail(tmp_path: Path) -> None:
    bots = tmp_path / "bots"
    bots.mkdir()
    (bots / "default.toml").write_text('name = "다리"\n', encoding="utf-8")
    results = await run_checks(IsolatedSettings(data_dir=tmp_path, bots_dir=bots))
    assert states(results)["bots"] is False
    assert "default.toml" in next(r.detail for r in results if r.component == "bots")
    with pytest.raises(ValidationError) as caught:
        IsolatedSettings(llm_timeout=-1)
    row = invalid_settings(caught.value)
    assert row.ok is False and "llm_timeout" in row.detail


def _column(line: str, text: str) -> int:
    """The display column where ``text`` starts in ``line`` (Hangul and emoji are two wide)."""
    import unicodedata

    before = line[: line.index(text)]
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in before)


@pytest.mark.parametrize(
    ("lang", "marks", "header"),
    [
        ("ko", ("✅ 정상", "❌ 실패", "— 미설정"), "구성 요소"),
        ("en", ("✅ ok", "❌ failing", "— not set"), "Component"),
    ],
)
def test_the_table_is_aligned_in_both_languages(lang: Any, marks: tuple[str, ...], header: str) -> None:
    results = [
        CheckResult("settings", True, "valid", "올바른 값이에요"),
        CheckResult("store", False, "redis: ConnectionError", "redis에 연결하지 못했어요"),
        CheckResult("slack", None, "not configured", "설정되지 않았어요"),
    ]
    table = format_table(results, lang)
    lines = table.splitlines()
    assert lines[0].startswith(header)
    assert set(lines[1]) == {"-"}
    rows = lines[2:]
    assert [next(m for m in marks if m in row) for row in rows] == list(marks)
    starts = {_column(row, next(m for m in marks if m in row)) for row in rows}
    assert len(starts) == 1, table
    details = {
        _column(row, r.detail_ko if lang == "ko" else r.detail) for row, r in zip(rows, results, strict=True)
    }
    assert len(details) == 1, table
