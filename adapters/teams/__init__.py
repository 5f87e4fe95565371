"""The Microsoft Teams door: Bot Framework activities at ``POST /api/messages``.

``setup`` mounts the door from settings. With an empty ``MicrosoftAppId`` the door runs in
local mode: no authentication at all, for the Bot Framework Emulator or a tunnel under test,
announced loudly at start-up.
"""

from __future__ import annotations

import logging

from aiohttp import web

from adapters.metrics import METRICS
from adapters.settings import Settings
from adapters.teams.handler import ROUTE, TeamsEndpoint, TeamsOptions
from core.errors import ConfigError

__all__ = ["ROUTE", "TeamsOptions", "mount", "setup"]

log = logging.getLogger(__name__)

_APP_TYPES = {
    "multitenant": "MultiTenant",
    "singletenant": "SingleTenant",
    "userassignedmsi": "UserAssignedMSI",
}

_LOCAL_MODE_WARNING = (
    "\n" + "!" * 78 + "\n"
    "!! TEAMS DOOR IN LOCAL MODE: MicrosoftAppId is empty, so POST /api/messages accepts\n"
    "!! requests WITHOUT ANY AUTHENTICATION. Use it only with the Bot Framework Emulator or\n"
    "!! on a machine nobody else can reach. For Teams, set MicrosoftAppId and MicrosoftAppPassword.\n"
    + "!"
    * 78
)


def _check(settings: Settings) -> str:
    """The normalized app type; raises ConfigError for a combination the SDK cannot use."""
    app_type = _APP_TYPES.get(settings.microsoft_app_type.strip().lower())
    if app_type is None:
        raise ConfigError(
            f"MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI, "
            f"not {settings.microsoft_app_type!r}",
            source="MicrosoftAppType",
        )
    if not settings.microsoft_app_id:
        return app_type
    needs_password = app_type != "UserAssignedMSI"
    if needs_password and not settings.microsoft_app_password:
        raise ConfigError(f"{app_type} bots need MicrosoftAppPassword", source="MicrosoftAppPassword")
    if app_type != "MultiTenant" and not settings.microsoft_app_tenant_id:
        raise ConfigError(f"{app_type} bots need MicrosoftAppTenantId", source="MicrosoftAppTenantId")
    return app_type


def mount(app: web.Application, settings: Settings, *, options: TeamsOptions | None = None) -> str:
    """Add ``POST /api/messages`` to ``app``; returns a one-line status for the start-up log.

    ENGINE, TASKS and HTTP are read from ``app`` at request time (they are opened at start-up).

    Raises:
        ConfigError: the Microsoft app settings do not fit together.
    """
    app_type = _check(settings)
    metrics = app.get(METRICS)
    registry = metrics.registry if metrics is not None else None
    endpoint = TeamsEndpoint(app, settings, options=options or TeamsOptions(), registry=registry)
    app.router.add_post(ROUTE, endpoint.handle)
    if not endpoint.auth.enabled:
        log.warning(_LOCAL_MODE_WARNING)
        return f"LOCAL MODE, NO AUTHENTICATION at POST {ROUTE} (MicrosoftAppId is empty)"
    return f"on at POST {ROUTE} (app {settings.microsoft_app_id}, {app_type})"


def setup(app: web.Application, settings: Settings) -> str:
    """Mount the Teams door from settings (the composition root calls this)."""
    return mount(app, settings)
