"""The browser console at ``GET /``: chat with a bot, watch the answer stream in, see each door.

Routes: ``GET /`` (the page, or the login form), ``POST /console/login`` and
``/console/logout``, ``GET /console/static/{app.js,app.css}``, and the JSON API under
``/console/api/`` (``bots``, ``status``, ``chat``; see ``adapters.web.api``).
Who may use it is decided in ``adapters.web.guard``.
"""

from __future__ import annotations

from aiohttp import web

from adapters.settings import Settings
from adapters.web.api import ConsoleAPI
from adapters.web.guard import Guard, allowed
from adapters.web.pages import Pages
from core.persona import load_personas

__all__ = ["allowed", "setup"]


def setup(app: web.Application, settings: Settings) -> str:
    """Mount the console; returns a line for the start-up log.

    Raises:
        ConfigError: a bot file is invalid (as create_app would have said already).
    """
    guard = Guard(settings.console_token)
    api = ConsoleAPI(settings=settings, personas=load_personas(settings.bots_dir))
    pages = Pages(guard)
    app.router.add_get("/", pages.index)
    app.router.add_post("/console/login", pages.login)
    app.router.add_post("/console/logout", pages.logout)
    app.router.add_get("/console/static/{name}", pages.asset)
    app.router.add_get("/console/api/bots", guard.api(api.bots))
    app.router.add_get("/console/api/status", guard.api(api.status))
    app.router.add_post("/console/api/chat", guard.api(api.chat))
    if guard.token_set:
        return "on at GET /, DARI_CONSOLE_TOKEN required"
    return "on at GET /, loopback only: set DARI_CONSOLE_TOKEN to open it to other machines"
