"""/healthz (the process answers) and /readyz (the store and the LLM can be used)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from core.errors import DariError
from core.llm.base import LLM
from core.memory.base import Store

__all__ = ["Readiness", "routes"]

NOT_CONFIGURED = (
    "LLM not configured: set OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible server, "
    "or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY)"
)


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str


class Readiness:
    """Checks the store and the LLM, caching the LLM's answer so probes don't hammer it."""

    def __init__(
        self, *, store: Store, store_kind: str, llm: LLM | None, cache_seconds: float = 10.0
    ) -> None:
        self._store = store
        self._store_kind = store_kind
        self._llm = llm
        self._cache_seconds = cache_seconds
        self._llm_checked: tuple[float, Check] | None = None

    async def _check_store(self) -> Check:
        try:
            await asyncio.wait_for(self._store.ping(), timeout=2.0)
        except (DariError, TimeoutError) as error:
            return Check(False, f"{self._store_kind}: {type(error).__name__}")
        return Check(True, self._store_kind)

    async def _check_llm(self) -> Check:
        if self._llm is None:
            return Check(False, NOT_CONFIGURED)
        now = time.monotonic()
        if self._llm_checked and now - self._llm_checked[0] < self._cache_seconds:
            return self._llm_checked[1]
        try:
            await asyncio.wait_for(self._llm.ping(), timeout=5.0)
            check = Check(True, "reachable")
        except (DariError, TimeoutError) as error:
            check = Check(False, f"unreachable: {type(error).__name__}")
        self._llm_checked = (now, check)
        return check

    async def report(self) -> tuple[bool, dict[str, dict[str, object]]]:
        store, llm = await asyncio.gather(self._check_store(), self._check_llm())
        checks = {"store": store, "llm": llm}
        return all(c.ok for c in checks.values()), {
            name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()
        }


READINESS = web.AppKey("readiness", Readiness)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ready, checks = await request.app[READINESS].report()
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )
