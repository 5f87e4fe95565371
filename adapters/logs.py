"""Logging: JSON lines, personal identifiers masked, secrets never printed."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from core import safety
from core.logctx import conversation_id

__all__ = ["AccessLogger", "ContextFilter", "JsonFormatter", "configure_logging", "request_id", "trace_id"]

# Set per HTTP request by the request-id middleware; background tasks started while handling
# the request inherit them, so an answer delivered later still carries its request's ids.
request_id: ContextVar[str] = ContextVar("dari_request_id", default="")
trace_id: ContextVar[str] = ContextVar("dari_trace_id", default="")

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Stamps each record, where it is emitted, with the request, trace and conversation ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (
            ("request_id", request_id),
            ("trace_id", trace_id),
            ("conversation", conversation_id),
        ):
            if not getattr(record, name, "") and (value := var.get()):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, identifiers masked and known secrets replaced by ``***``."""

    def __init__(self, *, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return safety.mask(text)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,  # tells the workers of `dari serve --workers N` apart
        }
        for name, var in (
            ("request_id", request_id),
            ("trace_id", trace_id),
            ("conversation", conversation_id),
        ):
            if value := var.get():
                entry[name] = value
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["trace"] = self.formatException(record.exc_info)
        return self._clean(json.dumps(entry, ensure_ascii=False))


def configure_logging(*, level: str, secrets: Iterable[str] = ()) -> None:
    """Send every log record to stderr as masked JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(secrets=secrets))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # These print SQL parameters and HTTP internals at DEBUG: noise, and conversation text.
    for noisy in ("aiosqlite", "httpcore", "httpcore2", "httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))


class AccessLogger(AbstractAccessLogger):
    """Access lines without query strings: a skill URL may carry its shared secret there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={"status": response.status, "duration_ms": round(time * 1000, 1)},
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
