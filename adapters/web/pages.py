"""The console's pages: the chat page at ``GET /``, the login form, and its two static assets.

Everything is served from files in ``static/`` read once at start-up: no build step, no CDN,
so the console works on a machine without internet. A strict Content-Security-Policy allows
only this origin's script and style sheet.
"""

from __future__ import annotations

import html
from importlib import resources

from aiohttp import web

from adapters.middleware import error_json
from adapters.web import messages
from adapters.web.guard import COOKIE, COOKIE_MAX_AGE, Guard

__all__ = ["ASSETS", "Pages"]

ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _read(name: str) -> str:
    return resources.files("adapters.web").joinpath("static", name).read_text(encoding="utf-8")


def _page(body: str, *, status: int = 200) -> web.Response:
    headers = {**_HEADERS, "Cache-Control": "no-store"}
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=headers)


def _see_other() -> web.Response:
    # Returned, not raised: the cookie rides on this response.
    return web.Response(status=303, headers={"Location": "/", "Cache-Control": "no-store"})


class Pages:
    """HTML handlers. The login form exists only when a token is set."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._index = _read("index.html")
        self._login = _read("login.html")
        self._refused = _read("refused.html")
        self._assets = {name: _read(name) for name in ASSETS}

    def _login_page(self, error: str, status: int) -> web.Response:
        note = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        return _page(self._login.replace("<!--error-->", note), status=status)

    async def index(self, request: web.Request) -> web.Response:
        reason = self._guard.refusal(request)
        if reason == messages.NEED_TOKEN:
            return self._login_page("", 401)
        if reason is not None:
            return _page(self._refused.replace("<!--reason-->", html.escape(reason)), status=403)
        return _page(self._index)

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            return error_json(404, "not found")
        reason = self._guard.refusal(request, need_token=False)
        if reason is not None:
            return error_json(403, reason)
        headers = {**_HEADERS, "Cache-Control": "no-cache"}
        return web.Response(
            text=self._assets[name], content_type=ASSETS[name], charset="utf-8", headers=headers
        )

    async def login(self, request: web.Request) -> web.Response:
        if not self._guard.token_set:
            return _see_other()
        reason = self._guard.refusal(request, need_token=False)
        if reason is not None:
            return self._login_page(reason, 403)
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not self._guard.check_token(given):
            return self._login_page(messages.WRONG_TOKEN, 401)
        response = _see_other()
        response.set_cookie(
            COOKIE,
            self._guard.cookie,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = _see_other()
        response.del_cookie(COOKIE, path="/")
        return response
