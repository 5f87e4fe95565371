"""Mounting the door: the start-up line, the local-mode warning, settings that do not fit."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from adapters.runtime import TaskSet
from adapters.teams import ROUTE, setup
from adapters.worker import WORKER, Worker
from core.errors import ConfigError
from tests.support.service import IsolatedSettings

APP_ID = "c9e8c047-2a74-40a2-b28a-b162d5f5327c"


def bare_app() -> web.Application:
    """An application with only what mounting a door needs: a worker for its answers."""
    app = web.Application()
    app[WORKER] = Worker(tasks=TaskSet(), name="test", lease=60.0, order_wait=30.0)
    return app


def routes(app: web.Application) -> list[tuple[str, str]]:
    return [(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None]


def test_local_mode_is_announced_loudly(caplog: pytest.LogCaptureFixture) -> None:
    app = bare_app()

    status = setup(app, IsolatedSettings())

    assert status == f"LOCAL MODE, NO AUTHENTICATION at POST {ROUTE} (MicrosoftAppId is empty)"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "WITHOUT ANY AUTHENTICATION" in warning.getMessage()
    assert ("POST", ROUTE) in routes(app)


def test_with_an_app_id_the_door_is_on(caplog: pytest.LogCaptureFixture) -> None:
    settings = IsolatedSettings(
        microsoft_app_id=APP_ID,
        microsoft_app_password=SecretStr("secret"),
        microsoft_app_type="singletenant",
        microsoft_app_tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47",
    )

    assert setup(bare_app(), settings) == f"on at POST {ROUTE} (app {APP_ID}, SingleTenant)"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("fields", "source"),
    [
        ({"microsoft_app_type": "Everyone"}, "MicrosoftAppType"),
        ({"microsoft_app_id": APP_ID}, "MicrosoftAppPassword"),
        ({"microsoft_app_id": APP_ID, "microsoft_app_type": "UserAssignedMSI"}, "MicrosoftAppTenantId"),
        (
            {"microsoft_app_id": APP_ID, "microsoft_app_type": "SingleTenant", "microsoft_app_password": "x"},
            "MicrosoftAppTenantId",
        ),
    ],
)
def test_settings_that_do_not_fit_stop_start_up(fields: dict[str, Any], source: str) -> None:
    with pytest.raises(ConfigError) as raised:
        setup(bare_app(), IsolatedSettings(**fields))

    assert raised.value.source == source
