"""Who may use the console: a token when one is set, otherwise only this machine.

The service does not know which address it listens on (``dari serve --host``), so the rule is
stated in terms of what a request shows:

- ``DARI_CONSOLE_TOKEN`` set: every console request carries it, as ``Authorization: Bearer``
  or as the session cookie that the login form sets (an HMAC of the token, never the token).
- no token: only requests from a loopback address, naming a loopback host, are answered
  (the host check stops DNS rebinding: a web page whose name resolves to 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import SecretStr

from adapters.middleware import error_json
from adapters.web import messages

__all__ = ["COOKIE", "Guard", "allowed", "is_loopback", "is_loopback_host", "session_value"]

COOKIE = "dari_console"
COOKIE_MAX_AGE = 12 * 3600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def allowed(remote: str, token_set: bool, token_ok: bool) -> bool:
    """The console's access rule as a pure function.

    Args:
        remote: the peer address of the request ("" when unknown).
        token_set: whether ``DARI_CONSOLE_TOKEN`` is configured.
        token_ok: whether the request carried that token (or its session cookie).
    """
    if token_set:
        return token_ok
    return is_loopback(remote)


def is_loopback(remote: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.0.0.1)."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_loopback_host(host: str) -> bool:
    """True when a Host header names this machine: localhost, *.localhost or a loopback address."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def session_value(token: bytes) -> str:
    """The cookie value for a token: usable only against this console, and not the token itself."""
    return hmac.new(token, b"dari console session v1", hashlib.sha256).hexdigest()


def _same(given: str, expected: bytes) -> bool:
    # Hashing first makes the comparison constant-time in the length of the secret too.
    # A header that is not UTF-8 arrives with surrogate escapes: hash its bytes as they came.
    given_bytes = given.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(hashlib.sha256(given_bytes).digest(), hashlib.sha256(expected).digest())


class Guard:
    """Applies the rule to requests; wraps handlers."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token.get_secret_value().encode() if token is not None else None
        self._cookie = session_value(self._token) if self._token is not None else ""

    @property
    def token_set(self) -> bool:
        return self._token is not None

    @property
    def cookie(self) -> str:
        """The session cookie value ("" without a token)."""
        return self._cookie

    def token_ok(self, request: web.Request) -> bool:
        if self._token is None:
            return False
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return _same(header[7:].strip(), self._token)
        return _same(request.cookies.get(COOKIE, ""), self._cookie.encode())

    def check_token(self, given: str) -> bool:
        """Whether a token typed into the login form is the right one."""
        return self._token is not None and _same(given.strip(), self._token)

    def refusal(self, request: web.Request, *, need_token: bool = True) -> str | None:
        """Why the request is refused (a Korean sentence), or None to let it through.

        ``need_token=False`` is for the public assets (style sheet, script): with a token set
        they are served before login, and without one the loopback rule still applies.
        """
        remote = request.remote or ""
        token_ok = self.token_ok(request) if need_token else True
        if not allowed(remote, self.token_set, token_ok):
            return messages.NEED_TOKEN if self.token_set else messages.LOOPBACK_ONLY
        if not self.token_set and not is_loopback_host(request.host):
            return messages.LOOPBACK_HOST_ONLY
        if request.method == "POST" and request.headers.get("Sec-Fetch-Site") == "cross-site":
            return messages.CROSS_SITE
        return None

    def api(self, handler: Handler) -> Handler:
        """Wrap an API handler: refusals are JSON (401 without the token, 403 otherwise)."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            reason = self.refusal(request)
            if reason is not None:
                return error_json(401 if reason == messages.NEED_TOKEN else 403, reason)
            return await handler(request)

        return guarded
