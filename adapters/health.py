"""/healthz (the process answers) and /readyz (the store and the LLM can be used).

/readyz is 503 when the LLM is not configured, cannot be reached, or its circuit breaker is
not closed: that is the contract ("store and LLM reachable"), and it lets a load balancer or
an operator see at once that answers are apologies. It says "degraded" with HTTP 200 while
Redis is unreachable: the service still answers (without shared memory), and every replica
sees the same Redis, so a 503 would take all of them out of the load balancer at once.
/healthz stays 200 throughout, so nothing is restarted for an outage elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from core.breaker import BreakerState, CircuitBreaker
from core.errors import DariError
from core.llm.base import LLM
from core.memory.base import Store
from core.memory.resilient import ResilientStore

__all__ = ["Readiness", "routes"]

NOT_CONFIGURED = (
    "LLM not configured: set OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible server, "
    "or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY)"
)


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    detail: str
    degraded: bool = False  # not ok, but the service still answers


class Readiness:
    """Checks the store and the LLM, caching the LLM's answer so probes don't hammer it.

    The LLM check also carries the circuit breaker's state ("breaker": closed, open, half-open).
    """

    def __init__(
        self,
        *,
        store: Store,
        store_kind: str,
        llm: LLM | None,
        breaker: CircuitBreaker | None = None,
        cache_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._breaker = breaker
        self._store_kind = store_kind
        self._llm = llm
        self._cache_seconds = cache_seconds
        self._llm_checked: tuple[float, Check] | None = None

    async def _check_store(self) -> Check:
        try:
            await asyncio.wait_for(self._store.ping(), timeout=2.0)
        except (DariError, TimeoutError) as error:
            return Check(False, f"{self._store_kind}: {type(error).__name__}")
        if isinstance(self._store, ResilientStore) and self._store.degraded:
            detail = (
                f"{self._store_kind}: unreachable for {self._store.degraded_for:.0f} s; answering without "
                f"shared memory, {self._store.unsynced} items to write back"
            )
            return Check(False, detail, degraded=True)
        return Check(True, self._store_kind)

    async def _check_llm(self) -> Check:
        check = await self._ping_llm()
        breaker = self._breaker
        if breaker is None or breaker.state is BreakerState.CLOSED:
            return check
        if breaker.state is BreakerState.OPEN:
            note = f"circuit open: apologising at once, next trial in {breaker.retry_after:.0f} s"
        else:
            note = "circuit half-open: trying the model again"
        return Check(False, f"{check.detail}; {note}")

    async def _ping_llm(self) -> Check:
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
        checks = {
            name: {"ok": c.ok, "detail": c.detail, "degraded": c.degraded}
            for name, c in (("store", store), ("llm", llm))
        }
        if self._breaker is not None:
            checks["llm"]["breaker"] = self._breaker.state.value
        return all(c.ok or c.degraded for c in (store, llm)), checks


READINESS = web.AppKey("readiness", Readiness)
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ready, checks = await request.app[READINESS].report()
    degraded = any(check["degraded"] for check in checks.values())
    status = "not ready" if not ready else "degraded" if degraded else "ready"
    return web.json_response({"status": status, "checks": checks}, status=200 if ready else 503)
